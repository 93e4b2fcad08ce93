"""The agent's logging: the set-up it shares with the helper (`helper.contract.logs`).

Context is bound, not passed: a pass binds `pass_id`, each lane `lane` (`bound_contextvars`),
and every event logged inside carries them. Loggers are named by module: `get_logger(__name__)`.
"""

from __future__ import annotations

from helper.contract.logs import configure, get_logger, redact_processor

__all__ = ["configure", "get_logger", "redact_processor"]
