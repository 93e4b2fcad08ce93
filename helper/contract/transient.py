"""Transient steps: what the helper runs as the runner user (spec, outcome) and the pure
StartTransientUnit properties that confine it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helper.contract.step_confinement import step_confinement


@dataclass(frozen=True)
class TransientSpec:
    """A runner-user step: a fixed program run by systemd as `user` (no secret in here)."""

    name: str
    description: str
    argv: tuple[str, ...]
    user: str
    working_directory: str
    read_write_paths: tuple[str, ...]
    environment: tuple[str, ...] = ()
    private_network: bool = False
    timeout: float = 600.0
    read_only_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransientOutcome:
    unit: str
    job_result: str  # done | failed | timeout | canceled | dependency | skipped
    exit_status: int | None
    result: str | None  # the unit's Result: success | exit-code | timeout | signal ...

    @property
    def ok(self) -> bool:
        return self.job_result == "done"


def transient_properties(spec: TransientSpec) -> list[tuple[str, str, Any]]:
    """Pure: the StartTransientUnit properties of a step, as (name, signature, value).
    stdin is the only channel for a secret; it is passed as a file descriptor (index 0)."""
    props: list[tuple[str, str, Any]] = [
        ("Description", "s", spec.description),
        ("Type", "s", "oneshot"),
        ("ExecStart", "a(sasb)", [[spec.argv[0], list(spec.argv), False]]),
        ("User", "s", spec.user),
        ("Group", "s", spec.user),
        ("WorkingDirectory", "s", spec.working_directory),
        ("Environment", "as", list(spec.environment)),
        ("StandardInputFileDescriptor", "h", 0),
        ("StandardOutput", "s", "journal"),
        ("StandardError", "s", "journal"),
        ("SyslogIdentifier", "s", "launchplane-step"),
        ("TimeoutStartUSec", "t", int(spec.timeout * 1_000_000)),
        ("ReadWritePaths", "as", list(spec.read_write_paths)),
        ("PrivateNetwork", "b", spec.private_network),
        *step_confinement(spec.private_network),
    ]
    if spec.read_only_paths:
        props.append(("ReadOnlyPaths", "as", list(spec.read_only_paths)))
    return props
