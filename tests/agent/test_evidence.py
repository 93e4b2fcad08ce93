"""Evidence delivery: spooled first, removed only when the service accepted it."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from agent.evidence import ROUTE, EvidenceSpool
from tests.agent.test_audit_store import record


def serve(statuses: list[int], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses.pop(0) if statuses else 201
        if status == 0:
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(status, json={})

    return httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler))


def test_failures_keep_the_record_and_a_later_pass_delivers_it(tmp_path: Path) -> None:
    spool = EvidenceSpool(tmp_path)
    spool.add(record("planned"))
    spool.add(record("failed"))
    seen: list[httpx.Request] = []
    report = spool.deliver(serve([0, 503], seen), SecretStr("evidence-token-123"))
    assert report.delivered == []
    assert len(spool.pending()) == 2
    report = spool.deliver(serve([201, 200], seen), SecretStr("evidence-token-123"))
    assert len(report.delivered) == 2
    assert spool.pending() == []
    assert {r.url.path for r in seen} == {ROUTE}
    assert all(r.headers["Idempotency-Key"] in r.content.decode() for r in seen)


def test_conflict_is_kept_not_dropped(tmp_path: Path) -> None:
    spool = EvidenceSpool(tmp_path)
    spool.add(record("planned"))
    report = spool.deliver(serve([409], []), SecretStr("evidence-token-123"))
    assert list(report.kept.values()) == ["HTTP 409"]
    assert len(spool.pending()) == 1
