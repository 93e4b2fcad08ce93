"""Faults the GitHub emulator injects on demand: 5xx, dropped connections, latency, rate limits,
and a deliberately wrong response (to prove the OpenAPI referee catches it)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = frozenset(
    {
        "status",  # answer `status` (e.g. 500, 502, 503) with a GitHub-style error body
        "disconnect",  # close the connection without any answer (a network error)
        "latency",  # wait `seconds` before answering normally
        "primary_rate_limit",  # exhaust the caller's bucket; it resets `reset_in` seconds later
        "secondary_rate_limit",  # 403/429 with `retry-after` (or none when retry_after is None)
        "corrupt",  # drop a required field from the answer (fails OpenAPI validation)
    }
)


@dataclass
class Fault:
    kind: str
    operation: str | None = None  # an operationId; None matches every REST operation
    method: str | None = None
    count: int | None = 1  # how many requests it hits; None: all of them
    status: int = 502
    seconds: float = 0.0
    retry_after: int | None = None
    reset_in: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")

    def matches(self, operation: str | None, method: str) -> bool:
        return (self.operation is None or self.operation == operation) and (
            self.method is None or self.method.upper() == method.upper()
        )


class FaultPlan:
    """Faults in the order added; each request consumes at most one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, operation: str | None, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(operation, method):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]
