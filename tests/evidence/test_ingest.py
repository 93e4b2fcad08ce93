"""The write route: 201 / 200 replay / 409, and every refused class leaves the store unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from agent.evidence import EvidenceSpool
from evidence.ingest import ROUTE
from tests.evidence import factories as ef
from tests.evidence.conftest import StoreUnderTest, Tokens


def post(client: TestClient, token: str | None, data: bytes, key: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    status: int = client.post(ROUTE, content=data, headers=headers).status_code
    return status


def snapshot(sut: StoreUnderTest) -> object:
    """Everything the store holds: its files (filesystem) or its rows (postgresql)."""
    if sut.kind == "filesystem":
        root = Path(sut.where)
        return sorted(
            (str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file()
        )
    return (sut.store.count(), sut.store.lanes())


def test_stored_then_replayed_then_conflicting(client: TestClient, tokens: Tokens) -> None:
    rec = ef.record("completed")
    headers = {"Authorization": f"Bearer {tokens.write}", "Idempotency-Key": rec.record_id}
    first = client.post(ROUTE, content=ef.body(rec), headers=headers)
    assert first.status_code == 201
    assert first.json()["record_id"] == rec.record_id
    assert first.json()["stored_at"] == ef.minutes(30).isoformat()
    replay = client.post(ROUTE, content=ef.body(rec), headers=headers)
    assert replay.status_code == 200
    assert replay.json()["record"] == rec.model_dump(mode="json")
    changed = rec.model_copy(update={"provider_evidence": {"request_id": "other"}})
    assert client.post(ROUTE, content=ef.body(changed), headers=headers).status_code == 409


def _completed_without_a_gate() -> bytes:
    raw = json.loads(ef.body(ef.record("completed")))
    raw["gates"] = raw["gates"][:-1]
    return json.dumps(raw).encode()


def _with_evidence(value: str) -> bytes:
    return ef.body(ef.record("planned", provider_evidence={"note": value}))


PLANNED = ef.record("planned")
KEY = PLANNED.record_id
# class -> (token picker, body, idempotency key, expected status)
Case = tuple[Callable[[Tokens], str | None], bytes, str | None, int]
REFUSED: dict[str, Case] = {
    "no token": (lambda t: None, ef.body(PLANNED), KEY, 401),
    "unknown token": (lambda t: "lpe_0000_notatokenatall", ef.body(PLANNED), KEY, 401),
    "read token": (lambda t: t.read, ef.body(PLANNED), KEY, 403),
    "another host's token": (lambda t: t.other_host, ef.body(PLANNED), KEY, 403),
    "oversized": (lambda t: t.write, ef.body(PLANNED) + b" " * 70_000, KEY, 413),
    "not json": (lambda t: t.write, b"{not json", KEY, 422),
    "not a record": (lambda t: t.write, b'{"schema_version": 1}', KEY, 422),
    "unknown schema version": (
        lambda t: t.write,
        ef.body(PLANNED).replace(b'"schema_version":1', b'"schema_version":2'),
        KEY,
        422,
    ),
    "completed without every gate": (lambda t: t.write, _completed_without_a_gate(), None, 422),
    "a github token inside": (
        lambda t: t.write,
        _with_evidence("ghs_" + "A1b2C3d4" * 5),
        None,
        422,
    ),
    "a registration token inside": (lambda t: t.write, _with_evidence("A" * 29), None, 422),
    "a jwt inside": (
        lambda t: t.write,
        _with_evidence("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2ln"),
        None,
        422,
    ),
    "a private key inside": (
        lambda t: t.write,
        _with_evidence("-----BEGIN RSA PRIVATE KEY-----"),
        None,
        422,
    ),
    "no idempotency key": (lambda t: t.write, ef.body(PLANNED), None, 400),
    "key is not the record id": (lambda t: t.write, ef.body(PLANNED), "k-other", 422),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_and_the_store_is_unchanged(
    case: str, client: TestClient, tokens: Tokens, sut: StoreUnderTest
) -> None:
    pick, data, key, status = REFUSED[case]
    if key is None and status != 400:
        key = json.loads(data)["record_id"]
    before = snapshot(sut)
    assert post(client, pick(tokens), data, key) == status
    assert snapshot(sut) == before
    assert sut.store.count() == 0


def test_the_bearer_token_itself_in_the_body_is_refused(
    client: TestClient, tokens: Tokens, sut: StoreUnderTest
) -> None:
    rec = ef.record("planned", provider_evidence={"echo": tokens.write.split("_", 2)[2]})
    before = snapshot(sut)
    assert post(client, tokens.write, ef.body(rec), rec.record_id) == 422
    assert snapshot(sut) == before


def test_a_revoked_token_is_refused(client: TestClient, tokens: Tokens) -> None:
    (entry,) = [e for e in tokens.registry.list() if e.hosts == (ef.HOST,)]
    assert tokens.registry.revoke(entry.token_id)
    assert post(client, tokens.write, ef.body(PLANNED), KEY) == 401


def test_the_agents_spool_delivers_to_the_service(
    client: TestClient, tokens: Tokens, tmp_path: Path, sut: StoreUnderTest
) -> None:
    """The agent's own delivery code against this service: accepted records leave the spool,
    a conflicting one stays."""
    spool = EvidenceSpool(tmp_path / "spool")
    spool.add(ef.record("planned"))
    spool.add(ef.record("completed"))
    report = spool.deliver(client, SecretStr(tokens.write))
    assert len(report.delivered) == 2
    assert spool.pending() == []
    assert sut.store.count() == 2
    spool.add(ef.record("planned", provider_evidence={"changed": True}))
    report = spool.deliver(client, SecretStr(tokens.write))
    assert list(report.kept.values()) == ["HTTP 409"]
    assert os.listdir(tmp_path / "spool")
