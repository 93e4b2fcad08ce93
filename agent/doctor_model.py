"""One finding of `launchplane-agent doctor`: a check, a code (`ok` when it passed) and a fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One finding: `code` is `ok` when it passed; `fix` says what to do when it did not."""

    check: str
    code: str
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.code == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}
