"""The schedule port's adapter: one JSON file in the agent's state directory, written atomically."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from agent.logs import get_logger
from agent.schedule import Schedule
from helper.contract.safefs import replace_file

log = get_logger(__name__)


class ScheduleFile:
    """A missing or unreadable file is an empty schedule: every lane is due (fail safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> Schedule:
        try:
            return Schedule.model_validate_json(self.path.read_bytes(), strict=False)
        except FileNotFoundError:
            return Schedule()
        except (OSError, ValidationError) as exc:
            log.warning("schedule.unreadable", path=str(self.path), error=type(exc).__name__)
            return Schedule()

    def save(self, schedule: Schedule) -> None:
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        replace_file(self.path, schedule.model_dump_json(indent=2).encode(), 0o640)
