"""Errors shared across the privilege line.

Hierarchy::

    LaunchplaneError                 base of every error raised on purpose
    ├── ConfigError                  lanes.toml unreadable or invalid: file, field, problem
    └── HelperError                  a helper request was refused or failed
        ├── ProtocolError            a frame could not be read or parsed (size, time, UTF-8, schema)
        │   ├── FrameTooLarge        the length prefix is over the limit (the body is never read)
        │   ├── FrameTimeout         the frame did not arrive within the read timeout
        │   ├── FrameTruncated       the peer closed the connection inside a frame
        │   ├── InvalidUtf8          the body is not valid UTF-8
        │   ├── InvalidJson          the body is not one JSON object (duplicates, NaN, depth...)
        │   ├── UnknownVerb          the verb is not one of the fixed verbs
        │   └── RequestInvalid       the object does not match the request schema
        ├── PeerRefused              the peer's uid may not call this verb
        ├── LaneRefused              the lane is unknown, unsafe, unmanaged or not allowlisted
        ├── NotOwned                 the unit drop-in or runner directory lacks our ownership marks
        ├── Conflict                 the lane's state does not allow the verb now (e.g. registered)
        ├── SystemdFailed            a D-Bus call failed, or a job's result was not `done`
        ├── StepFailed               a runner-user step (transient unit) exited unsuccessfully
        ├── AuditUnavailable         the audit log cannot be appended to: nothing is done
        ├── InternalError            an unexpected failure inside the helper (details in its log)
        └── HelperUnreachable        client side: no connection, no answer in time, or garbage

Messages never carry secret values: callers pass field names, never field contents.
"""

from __future__ import annotations

from collections.abc import Sequence

from helper.contract.identifiers import Finding


class LaunchplaneError(Exception):
    """Base of every deliberate error; `code` is stable and machine-readable."""

    code = "error"


class ConfigError(LaunchplaneError):
    """A process's configuration (lanes.toml, its environment) could not be loaded; says
    which source, which field and what is wrong."""

    code = "config_invalid"

    def __init__(
        self, path: str, problems: list[tuple[str, str]], *, what: str = "lanes file"
    ) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {field}: {message}" for field, message in problems]
        super().__init__(f"invalid {what}\n" + "\n".join(lines))


class UsageError(LaunchplaneError):
    """A command line asked for something it cannot have; the message says what."""

    code = "usage"


class HelperError(LaunchplaneError):
    """A helper request was refused or failed."""

    code = "helper_error"


class ProtocolError(HelperError):
    """A frame could not be read or did not match the protocol."""

    code = "protocol_error"


class FrameTooLarge(ProtocolError):
    code = "frame_too_large"


class FrameTimeout(ProtocolError):
    code = "frame_timeout"


class FrameTruncated(ProtocolError):
    code = "frame_truncated"


class InvalidUtf8(ProtocolError):
    code = "invalid_utf8"


class InvalidJson(ProtocolError):
    code = "invalid_json"


class UnknownVerb(ProtocolError):
    code = "unknown_verb"


class RequestInvalid(ProtocolError):
    code = "request_invalid"


class PeerRefused(HelperError):
    """The peer's credentials do not allow this verb."""

    code = "peer_refused"


class LaneRefused(HelperError):
    """The named lane may not be acted on; `findings` say why (code, field, message)."""

    code = "lane_refused"

    def __init__(self, message: str = "lane refused", findings: Sequence[Finding] = ()) -> None:
        self.findings = tuple(findings)
        super().__init__(message)


class NotOwned(HelperError):
    """A drop-in without valid `X-Launchplane-*` marks, or a `.runner` naming something else."""

    code = "not_owned"


class Conflict(HelperError):
    """The lane's current state forbids the verb; `reason` is a stable sub-code."""

    code = "conflict"

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class SystemdFailed(HelperError):
    """A D-Bus call returned an error, or a job ended with a result other than `done`."""

    code = "systemd_failed"


class StepFailed(HelperError):
    """A runner-user step exited unsuccessfully; the message names the transient unit."""

    code = "step_failed"


class AuditUnavailable(HelperError):
    code = "audit_unavailable"


class InternalError(HelperError):
    code = "internal"


class HelperUnreachable(HelperError):
    code = "unreachable"
