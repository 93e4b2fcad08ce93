"""Test doubles: in-memory stand-ins for the outside world, never shipped in the wheel."""
