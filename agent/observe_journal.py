"""The lane listener's journal: session conflicts it reported since its unit's activation.

Every active lane of a pass is read with ONE journalctl run (`-o json`, one `-u` per unit),
each line given to its unit by `_SYSTEMD_UNIT` and kept only when it is newer than that
unit's activation; the newest JOURNAL_LINES per unit count. A pass of 200 running lanes
thus starts one process, not 200."""

from __future__ import annotations

import grp
import json
import os
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from agent.unit_states import ListenerLog

# What the real listener prints (docs/github.md "The runner"): `_term.WriteError` on each
# refused session create; "Listening for Jobs" once its first session exists, and "Runner
# reconnected." when a session create (or a poll) succeeds after errors.
SESSION_CONFLICT = "A session for this runner already exists."
LISTENING = "Listening for Jobs"
HOLDS_SESSION = (LISTENING, "Runner reconnected.")
JOURNAL_GROUPS = ("systemd-journal", "adm")  # journalctl(1): who may read the system journal
JOURNAL_LINES = 2000  # the newest lines since the activation: a conflict repeats every 30 s
OUTPUT_LIMIT = 32 << 20  # bytes of JSON for all units of one pass: beyond, unproven
TIMEOUT = 10.0


class JournalReader(Protocol):
    def listener_logs(self, units: Mapping[str, int]) -> dict[str, ListenerLog]:
        """unit -> its listener's log since ActiveEnterTimestampMonotonic (µs), for each unit."""
        ...


def parse_listener_log(text: str) -> ListenerLog:
    """Conflicts, and whether the listener reported holding a session after the last one."""
    return parse_listener_lines(text.splitlines())


def parse_listener_lines(lines: Iterable[str]) -> ListenerLog:
    """parse_listener_log over lines already split."""
    conflicts, listening = 0, False
    for line in lines:
        if SESSION_CONFLICT in line:
            conflicts, listening = conflicts + 1, False
        elif any(mark in line for mark in HOLDS_SESSION):
            listening = True
    return ListenerLog(session_conflicts=conflicts, listening=listening)


def activation_usec(
    active_enter_monotonic: int,
    monotonic: Callable[[], float] = time.monotonic,
    realtime: Callable[[], float] = time.time,
) -> int:
    """The wall clock (µs since the epoch) at the unit's ActiveEnterTimestampMonotonic (µs,
    CLOCK_MONOTONIC as systemd's)."""
    return int(realtime() * 1e6) - (int(monotonic() * 1e6) - active_enter_monotonic)


def activation_realtime(
    active_enter_monotonic: int,
    monotonic: Callable[[], float] = time.monotonic,
    realtime: Callable[[], float] = time.time,
) -> str:
    """`--since` for the unit's activation: `@seconds.micros` of the wall clock then."""
    usec = activation_usec(active_enter_monotonic, monotonic, realtime)
    return f"@{usec // 1_000_000}.{usec % 1_000_000:06d}"


def _message(entry: dict[str, Any]) -> str:
    """MESSAGE as text (journalctl gives a list of byte values for one that is not UTF-8)."""
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):
        return bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode(
            "utf-8", "replace"
        )
    return str(message)


def split_by_unit(output: bytes, since_usec: Mapping[str, int]) -> dict[str, ListenerLog]:
    """journalctl's JSON lines -> each unit's ListenerLog from its own lines newer than its
    activation (the newest JOURNAL_LINES of them)."""
    kept: dict[str, deque[str]] = {unit: deque(maxlen=JOURNAL_LINES) for unit in since_usec}
    for raw in output.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        unit = str(entry.get("_SYSTEMD_UNIT", ""))
        if unit not in kept:
            continue
        try:
            at = int(entry.get("__REALTIME_TIMESTAMP", 0))
        except (TypeError, ValueError):
            continue
        if at >= since_usec[unit]:
            kept[unit].append(_message(entry))
    return {unit: parse_listener_lines(lines) for unit, lines in kept.items()}


def may_read_journal(
    uid: Callable[[], int] = os.getuid, groups: Callable[[], list[int]] = os.getgroups
) -> bool:
    """Whether this process can see the system journal: root (the files' owner) or a member
    of one of JOURNAL_GROUPS. Otherwise journalctl shows only the user's own journal and
    exits 0: an empty answer that must not read as "no conflict"."""
    if uid() == 0:
        return True
    member = set(groups())
    for name in JOURNAL_GROUPS:
        try:
            if grp.getgrnam(name).gr_gid in member:
                return True
        except KeyError:
            continue
    return False


class JournalctlReader:
    """`journalctl -u UNIT --since ACTIVATION -o cat`: bounded lines, bytes and time."""

    def __init__(
        self,
        journalctl: str = "/usr/bin/journalctl",
        allowed: Callable[[], bool] = may_read_journal,
        timeout: float = TIMEOUT,
    ) -> None:
        self.journalctl = journalctl
        self.allowed = allowed
        self.timeout = timeout

    def listener_log(self, unit: str, active_enter_monotonic: int) -> ListenerLog:
        """One unit's log (listener_logs of one)."""
        return self.listener_logs({unit: active_enter_monotonic})[unit]

    def listener_logs(self, units: Mapping[str, int]) -> dict[str, ListenerLog]:
        if not units:
            return {}
        if not self.allowed():
            why = (
                f"the agent may not read the system journal (not in {' or '.join(JOURNAL_GROUPS)})"
            )
            return dict.fromkeys(units, ListenerLog(unreadable=why))
        since = {unit: activation_usec(mono) for unit, mono in units.items()}
        first = min(since.values())
        argv = [self.journalctl, "--no-pager", "--quiet", "-o", "json"]
        argv += ["--output-fields=MESSAGE,_SYSTEMD_UNIT"]
        argv += ["--since", f"@{first // 1_000_000}.{first % 1_000_000:06d}"]
        for unit in sorted(units):
            argv += ["-u", unit]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "SYSTEMD_PAGER": ""},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return dict.fromkeys(
                units, ListenerLog(unreadable=f"journalctl failed: {type(exc).__name__}")
            )
        if done.returncode != 0:
            why = done.stderr[:200].decode("utf-8", "replace").strip()
            return dict.fromkeys(
                units, ListenerLog(unreadable=f"journalctl exited {done.returncode}: {why}")
            )
        if len(done.stdout) > OUTPUT_LIMIT:
            too_long = f"more than {OUTPUT_LIMIT} bytes of journal since the activations"
            return dict.fromkeys(units, ListenerLog(unreadable=too_long))
        return split_by_unit(done.stdout, since)
