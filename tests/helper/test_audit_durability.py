"""Which audit lines are fsynced before the answer (issue 17; docs/helper.md, "Audit log"):
every line of a request that may change the host, and of one that was not understood; not
those of read-only `status`, which are written at once and fsynced with the next durable line
or when the helper exits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helper.auditlog import AuditLog
from tests.helper.conftest import World


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files fsync was called on, anywhere in the process (the real fsync still runs)."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_a_status_line_is_written_but_not_fsynced(world: World, synced: list[str]) -> None:
    world.make_lane_dir(registered=True)
    assert world.ask("status").ok
    assert not world.ask("status", lane="no-such-lane").ok  # a refused status: read-only too
    assert [line["verb"] for line in world.audit_lines()] == ["status", "status"]
    assert synced == []


def test_a_mutating_verb_line_is_fsynced_even_in_dry_run(world: World, synced: list[str]) -> None:
    world.make_lane_dir(registered=True)
    assert world.ask("install-or-update-unit", dry_run=True).ok
    assert world.ask("install-or-update-unit", dry_run=False).ok
    assert [p for p in synced if p == str(world.audit_log)] == [str(world.audit_log)] * 2


def test_a_request_not_understood_is_fsynced(world: World, synced: list[str]) -> None:
    assert not world.ask_raw(b'{"verb": "status"').ok
    assert world.audit_lines()[-1]["code"] != "ok"
    assert synced == [str(world.audit_log)]


def test_sync_fsyncs_the_log_and_tolerates_its_absence(tmp_path: Path, synced: list[str]) -> None:
    log = AuditLog(str(tmp_path / "a.jsonl"))
    log.sync()
    assert synced == []
    log.open().write({"verb": "status"}, durable=False)
    log.sync()
    assert synced == [str(tmp_path / "a.jsonl")]
