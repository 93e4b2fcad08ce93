"""The read API: read scope only, filters, cursor pagination, latest per lane, fleet summary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from evidence.app import API, create_app
from evidence.ingest import ROUTE
from tests.evidence import factories as ef
from tests.evidence.conftest import StoreUnderTest, Tokens
from tests.evidence.test_store_contract import stored


def _seed(client: TestClient, tokens: Tokens) -> None:
    history = [("failed", 1), ("completed", 2), ("planned", 3)]
    for status, minute in history:
        rec = ef.record(status, at=ef.minutes(minute))
        headers = {"Authorization": f"Bearer {tokens.write}", "Idempotency-Key": rec.record_id}
        assert client.post(ROUTE, content=ef.body(rec), headers=headers).status_code == 201
    other = ef.record("failed", lane="lane-b", at=ef.minutes(4))
    headers = {"Authorization": f"Bearer {tokens.write}", "Idempotency-Key": other.record_id}
    assert client.post(ROUTE, content=ef.body(other), headers=headers).status_code == 201


@pytest.mark.parametrize("path", ["/audits", "/lanes", "/fleet", "/audits/x"])
def test_reading_needs_a_read_token(client: TestClient, tokens: Tokens, path: str) -> None:
    assert client.get(API + path).status_code == 401
    write = {"Authorization": f"Bearer {tokens.write}"}
    assert client.get(API + path, headers=write).status_code == 403


def test_records_by_filter_with_a_cursor(client: TestClient, tokens: Tokens) -> None:
    _seed(client, tokens)
    read = {"Authorization": f"Bearer {tokens.read}"}
    ids: list[str] = []
    params: dict[str, str] = {"lane": ef.LANE, "limit": "2"}
    while True:
        page = client.get(f"{API}/audits", params=params, headers=read).json()
        ids += [r["record_id"] for r in page["records"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [i.split("-")[1] for i in ids] == ["planned", "completed", "failed"]
    window = {"since": ef.minutes(2).isoformat(), "until": ef.minutes(4).isoformat()}
    found = client.get(f"{API}/audits", params=window, headers=read).json()["records"]
    assert [r["record"]["status"] for r in found] == ["planned", "completed"]
    by_status = client.get(f"{API}/audits", params={"status": "failed"}, headers=read).json()
    assert len(by_status["records"]) == 2
    one = client.get(f"{API}/audits/{ids[0]}", headers=read)
    assert one.json()["record"]["record_id"] == ids[0]
    assert client.get(f"{API}/audits/nope", headers=read).status_code == 404
    for bad in ({"cursor": "!!"}, {"limit": "0"}, {"status": "x"}, {"since": "2026-01-01"}):
        assert client.get(f"{API}/audits", params=bad, headers=read).status_code == 400


def test_latest_per_lane_and_the_fleet_summary(client: TestClient, tokens: Tokens) -> None:
    _seed(client, tokens)
    read = {"Authorization": f"Bearer {tokens.read}"}
    lanes = {x["lane"]: x for x in client.get(f"{API}/lanes", headers=read).json()["lanes"]}
    assert lanes[ef.LANE]["latest"]["status"] == "planned"
    assert lanes[ef.LANE]["latest_completed"]["created_at"] == ef.minutes(2).isoformat()
    assert lanes["lane-b"]["latest_completed"] is None
    fleet = client.get(f"{API}/fleet", headers=read).json()
    summary = {x["lane"]: x for x in fleet["lanes"]}
    proven, unproven = summary[ef.LANE], summary["lane-b"]
    assert proven["proven"] is True
    assert proven["proven_since"] == ef.minutes(2).isoformat()
    assert proven["last_proof_age_seconds"] == 28 * 60  # the clock says minute 30
    assert proven["last_failed_gate"] == "github_exactly_one_online"
    assert proven["stale"] is False
    assert unproven["proven"] is False
    assert unproven["proven_since"] is None
    assert unproven["last_failed_gate"] == "github_exactly_one_online"
    other_host = client.get(f"{API}/fleet", params={"host": "nowhere"}, headers=read).json()
    assert other_host["lanes"] == []
    first = client.get(f"{API}/fleet", params={"limit": "1"}, headers=read).json()
    assert [x["lane"] for x in first["lanes"]] == [ef.LANE]
    params = {"limit": "1", "cursor": first["next_cursor"]}
    second = client.get(f"{API}/fleet", params=params, headers=read).json()
    assert [x["lane"] for x in second["lanes"]] == ["lane-b"]
    for bad in ({"limit": "0"}, {"cursor": "W10"}, {"limit": "5001"}):
        assert client.get(f"{API}/lanes", params=bad, headers=read).status_code == 400


def fixed(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def test_a_lane_without_a_record_for_longer_than_stale_after_is_stale(
    sut: StoreUnderTest, tokens: Tokens
) -> None:
    sut.store.put(stored(ef.record("completed", at=ef.minutes(0))))
    read = {"Authorization": f"Bearer {tokens.read}"}
    for now, stale in ((ef.minutes(60), False), (ef.minutes(61), True)):
        app = create_app(
            sut.store, tokens.registry, stale_after=timedelta(hours=1), clock=fixed(now)
        )
        with TestClient(app, base_url="http://127.0.0.1") as client:
            (lane,) = client.get(f"{API}/fleet", headers=read).json()["lanes"]
        assert lane["stale"] is stale
        assert lane["proven"] is True


def test_the_fleet_page_needs_a_read_cookie_and_comes_in_pages(
    client: TestClient, tokens: Tokens
) -> None:
    _seed(client, tokens)
    assert client.get("/fleet", follow_redirects=False).headers["location"] == "/fleet/login"
    refused = client.post("/fleet/login", data={"token": tokens.write}, follow_redirects=False)
    assert refused.status_code == 200
    assert "not a live token with the read scope" in refused.text
    signed_in = client.post("/fleet/login", data={"token": tokens.read}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    first = client.get("/fleet", params={"limit": "1"})
    assert "1 of 1 lanes proven, 1 hosts on this page" in first.text
    assert "id='next'" in first.text
    assert "lane-b" not in first.text
    cursor = first.text.split("/fleet?cursor=")[1].split("'")[0]
    second = client.get(f"/fleet?cursor={cursor}&limit=1")
    assert "lane-b" in second.text
    assert "0 of 1 lanes proven" in second.text
