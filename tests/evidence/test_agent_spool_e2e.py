"""The agent's own delivery (agent.wiring.deliver_evidence, the spool, its token file) over
real HTTP to the service on PostgreSQL: down, then up, every record arrives exactly once;
a wrong token, another host's token and a forged `completed` without gates are refused and
stay spooled with a log line. (The same in the systemd sandbox is left to do.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent.evidence import TOKEN_FILE, EvidenceSpool
from agent.settings import load_settings
from agent.wiring import deliver_evidence
from evidence.app import create_app
from evidence.pg_store import PostgresEvidenceStore
from evidence.serving import serve_in_thread
from tests.evidence import factories as ef
from tests.evidence.conftest import TEMPLATE, Tokens
from tests.evidence.postgres import Cluster


@pytest.fixture
def pg_store(pg_cluster: Cluster) -> Iterator[PostgresEvidenceStore]:
    store = PostgresEvidenceStore(pg_cluster.create_database("evidence_spool_e2e", TEMPLATE))
    try:
        yield store
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_down_then_up_exactly_once_and_forgeries_stay_spooled(
    pg_store: PostgresEvidenceStore,
    tokens: Tokens,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    monkeypatch.setenv("LAUNCHPLANE_EVIDENCE_URL", f"http://127.0.0.1:{port}")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    paths = load_settings(
        {
            "LAUNCHPLANE_AUDIT_DIR": str(tmp_path / "audits"),
            "LAUNCHPLANE_CREDENTIALS": str(credentials),
            "LAUNCHPLANE_EVIDENCE_URL": f"http://127.0.0.1:{port}",
        }
    )
    spool = EvidenceSpool(tmp_path / "spool")
    token_file = credentials / TOKEN_FILE

    def logged() -> str:
        captured = capsys.readouterr()  # structlog prints to stdout until the CLI configures it
        return captured.out + captured.err

    def deliver(token: str) -> list[str]:
        token_file.write_text(token + "\n")
        deliver_evidence(paths)
        return spool.pending()

    planned, completed = ef.record("planned"), ef.record("completed", at=ef.minutes(1))
    spool.add(planned)
    spool.add(completed)

    # The service is down: nothing is lost, the agent says so.
    assert deliver(tokens.write) == sorted([planned.record_id, completed.record_id])
    assert "evidence.kept" in logged()

    app = create_app(pg_store, tokens.registry, stale_after=timedelta(hours=1))
    with serve_in_thread(app, port=port):
        assert deliver(tokens.write) == []
        assert pg_store.count() == 2
        spool.add(planned)  # a retry after a lost 201: the same key and body is a replay
        assert deliver(tokens.write) == []
        assert pg_store.count() == 2

        later = ef.record("planned", at=ef.minutes(2))
        spool.add(later)
        for token in ("lpe_000000000000_forgedforgedforgedforged", tokens.other_host):
            assert deliver(token) == [later.record_id]
            assert "evidence.kept" in logged()
        forged = json.loads(ef.body(ef.record("completed", at=ef.minutes(3))))
        forged["gates"] = forged["gates"][:7]
        (spool.directory / f"{forged['record_id']}.json").write_text(json.dumps(forged))
        left = deliver(tokens.write)
        assert left == [forged["record_id"]]
        assert "HTTP 422" in logged()
        assert pg_store.count() == 3

    (state,) = pg_store.lanes()
    assert state.completed is not None
    assert state.completed.record_id == completed.record_id
