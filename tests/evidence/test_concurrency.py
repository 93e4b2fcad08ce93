"""32 concurrent posts of one key over real HTTP (uvicorn on loopback), on both stores."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx

from evidence.app import create_app
from evidence.ingest import ROUTE
from evidence.serving import serve_in_thread
from tests.evidence import factories as ef
from tests.evidence.conftest import StoreUnderTest, Tokens

CLIENTS = 32


def _post_all(url: str, token: str, bodies: list[bytes], key: str) -> Counter[int]:
    barrier = threading.Barrier(len(bodies))

    def one(data: bytes) -> int:
        with httpx.Client(base_url=url, timeout=60) as http:
            barrier.wait()
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            return http.post(ROUTE, content=data, headers=headers).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return Counter(pool.map(one, bodies))


def test_same_key_same_body_is_one_201_and_the_rest_200(
    sut: StoreUnderTest, tokens: Tokens
) -> None:
    rec = ef.record("completed")
    app = create_app(sut.store, tokens.registry, stale_after=timedelta(hours=1))
    with serve_in_thread(app) as url:
        statuses = _post_all(url, tokens.write, [ef.body(rec)] * CLIENTS, rec.record_id)
    assert statuses == Counter({201: 1, 200: CLIENTS - 1})
    assert sut.store.count() == 1


def test_same_key_different_bodies_is_one_201_and_the_rest_409(
    sut: StoreUnderTest, tokens: Tokens
) -> None:
    rec = ef.record("planned")
    bodies = [
        ef.body(rec.model_copy(update={"provider_evidence": {"attempt": i}}))
        for i in range(CLIENTS)
    ]
    app = create_app(sut.store, tokens.registry, stale_after=timedelta(hours=1))
    with serve_in_thread(app) as url:
        statuses = _post_all(url, tokens.write, bodies, rec.record_id)
    assert statuses == Counter({201: 1, 409: CLIENTS - 1})
    assert sut.store.count() == 1
    (lane,) = sut.store.lanes()
    assert lane.latest.record_id == rec.record_id
