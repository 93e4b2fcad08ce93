"""Throwaway container with a real systemd for the real-systemd and package test tiers."""

from tests.sandbox.fixture import (
    SCRIPT,
    Bind,
    ExecError,
    Sandbox,
    SandboxError,
    prepare,
    prepare_wheels,
    running,
)

__all__ = [
    "SCRIPT",
    "Bind",
    "ExecError",
    "Sandbox",
    "SandboxError",
    "prepare",
    "prepare_wheels",
    "running",
]
