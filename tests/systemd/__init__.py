"""Tests that need a real systemd: they run in the sandbox container (docs/sandbox.md)."""
