"""Errors shared across the privilege line.

Hierarchy::

    LaunchplaneError                 base of every error raised on purpose
    ├── ConfigError                  lanes.toml unreadable or invalid: file, field, problem
    └── HelperError                  a helper request was refused or failed
        ├── ProtocolError            a frame could not be read or parsed (size, time, UTF-8, schema)
        ├── PeerRefused              the peer's uid may not call this verb
        └── LaneRefused              the lane is unknown, unsafe, unmanaged or not allowlisted

Messages never carry secret values: callers pass field names, never field contents.
"""

from __future__ import annotations


class LaunchplaneError(Exception):
    """Base of every deliberate error; `code` is stable and machine-readable."""

    code = "error"


class ConfigError(LaunchplaneError):
    """lanes.toml could not be loaded; says which file, which field and what is wrong."""

    code = "config_invalid"

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {field}: {message}" for field, message in problems]
        super().__init__("invalid lanes file\n" + "\n".join(lines))


class HelperError(LaunchplaneError):
    """A helper request was refused or failed."""

    code = "helper_error"


class ProtocolError(HelperError):
    """A frame could not be read or did not match the protocol."""

    code = "protocol_error"


class PeerRefused(HelperError):
    """The peer's credentials do not allow this verb."""

    code = "peer_refused"


class LaneRefused(HelperError):
    """The named lane may not be acted on."""

    code = "lane_refused"
