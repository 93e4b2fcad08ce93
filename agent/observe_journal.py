"""The lane listener's journal: session conflicts it reported since its unit's activation."""

from __future__ import annotations

import grp
import os
import subprocess
import time
from collections.abc import Callable
from typing import Protocol

from agent.unit_states import ListenerLog

# What the real listener prints (docs/github.md "The runner"): `_term.WriteError` on each
# refused session create; "Listening for Jobs" once its first session exists, and "Runner
# reconnected." when a session create (or a poll) succeeds after errors.
SESSION_CONFLICT = "A session for this runner already exists."
LISTENING = "Listening for Jobs"
HOLDS_SESSION = (LISTENING, "Runner reconnected.")
JOURNAL_GROUPS = ("systemd-journal", "adm")  # journalctl(1): who may read the system journal
JOURNAL_LINES = 2000  # the newest lines since the activation: a conflict repeats every 30 s
OUTPUT_LIMIT = 1 << 20
TIMEOUT = 10.0


class JournalReader(Protocol):
    def listener_log(self, unit: str, active_enter_monotonic: int) -> ListenerLog: ...


def parse_listener_log(text: str) -> ListenerLog:
    """Conflicts, and whether the listener reported holding a session after the last one."""
    conflicts, listening = 0, False
    for line in text.splitlines():
        if SESSION_CONFLICT in line:
            conflicts, listening = conflicts + 1, False
        elif any(mark in line for mark in HOLDS_SESSION):
            listening = True
    return ListenerLog(session_conflicts=conflicts, listening=listening)


def activation_realtime(
    active_enter_monotonic: int,
    monotonic: Callable[[], float] = time.monotonic,
    realtime: Callable[[], float] = time.time,
) -> str:
    """`--since` for the unit's ActiveEnterTimestampMonotonic (µs, CLOCK_MONOTONIC as
    systemd's): `@seconds.micros` of the wall clock at that moment."""
    usec = int(realtime() * 1e6) - (int(monotonic() * 1e6) - active_enter_monotonic)
    return f"@{usec // 1_000_000}.{usec % 1_000_000:06d}"


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
        if not self.allowed():
            return ListenerLog(
                unreadable="the agent may not read the system journal (not in "
                f"{' or '.join(JOURNAL_GROUPS)})"
            )
        since = activation_realtime(active_enter_monotonic)
        argv = [self.journalctl, "--no-pager", "--quiet", "-o", "cat", "-u", unit]
        argv += ["--since", since, "-n", str(JOURNAL_LINES)]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "SYSTEMD_PAGER": ""},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ListenerLog(unreadable=f"journalctl failed: {type(exc).__name__}")
        if done.returncode != 0:
            why = done.stderr[:200].decode("utf-8", "replace").strip()
            return ListenerLog(unreadable=f"journalctl exited {done.returncode}: {why}")
        return parse_listener_log(done.stdout[:OUTPUT_LIMIT].decode("utf-8", "replace"))
