"""structlog set-up of every launchplane process (the agent and the root helper): one JSON
event per line under systemd, every registered secret masked, never on stdout.

Context is bound, not passed: a pass binds `pass_id`, each lane `lane` (`bound_contextvars`),
and every event logged inside carries them. Loggers are named by module: `get_logger(__name__)`.
Until a process calls `configure`, events go to stderr as JSON lines (stdout is for output).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from helper.contract.redact import REDACTOR


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask registered secrets in every key and value of the event."""
    redacted: MutableMapping[str, Any] = REDACTOR.redact_obj(dict(event_dict))
    return redacted


class _NamedLogger(structlog.PrintLogger):
    """A PrintLogger that knows the module it logs for."""

    def __init__(self, file: TextIO, name: str = "") -> None:
        super().__init__(file)
        self.name = name


def add_logger_name(
    logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict["logger"] = getattr(logger, "name", "")
    return event_dict


def configure(
    *, json_output: bool, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """JSON lines for journald (or --json), key=value for a person at a terminal; logs to stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # sys.stderr is looked up at each call, not bound now: it may be replaced later.
        logger_factory=lambda *names: _NamedLogger(stream or sys.stderr, *names[:1]),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """The logger of a module (`__name__`); its events carry `logger` and the bound context."""
    return structlog.get_logger(name)


if not structlog.is_configured():  # a process that logs before it configures: stderr, JSON
    configure(json_output=True)
