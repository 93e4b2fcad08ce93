"""The agent's logging: the shared structlog set-up (`helper.contract.logs`) plus the CLI's
choice of where logs go.

Context is bound, not passed: a pass binds `pass_id`, each lane `lane` (`bound_contextvars`),
and every event logged inside carries them. Loggers are named by module: `get_logger(__name__)`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from helper.contract.logs import configure, get_logger, redact_processor

__all__ = ["configure", "configure_cli", "get_logger", "in_journal", "redact_processor", "silence"]


def _drop(_logger: Any, _method: str, _event_dict: MutableMapping[str, Any]) -> Any:
    raise structlog.DropEvent


def silence() -> None:
    """Log nothing at all (the CLI run by hand without -v)."""
    structlog.configure(
        processors=[_drop],
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def in_journal(env: Mapping[str, str]) -> bool:
    """Whether systemd runs us (its service environment), so stderr is the journal's."""
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def configure_cli(*, verbose: bool, json_output: bool, env: Mapping[str, str]) -> None:
    """The CLI's logs: on stderr only with -v (debug too) or in the journal (JSON lines);
    otherwise none, so that stdout's human output is all a person sees."""
    journal = in_journal(env)
    if not (verbose or journal):
        silence()
        return
    configure(
        json_output=json_output or journal or not sys.stderr.isatty(),
        level=logging.DEBUG if verbose else logging.INFO,
    )
