"""Fixtures: one PostgreSQL cluster per session, a fresh database per test, both stores, tokens
and the app on an injected clock."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from evidence.app import create_app
from evidence.fs_store import FilesystemEvidenceStore
from evidence.pg_store import PostgresEvidenceStore, migrate
from evidence.store import EvidenceStore
from evidence.tokens import TokenRegistry
from tests.evidence import factories as ef
from tests.evidence.postgres import Cluster, running_cluster

TEMPLATE = "evidence_template"
_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        migrate(cluster.create_database(TEMPLATE))  # Alembic, once; tests copy the result
        yield cluster


@dataclass
class StoreUnderTest:
    kind: str
    store: EvidenceStore
    where: str  # the directory (filesystem) or the database name (postgresql)


@pytest.fixture(params=["filesystem", "postgresql"])
def sut(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    if request.param == "filesystem":
        root = tmp_path / "store"
        under = StoreUnderTest("filesystem", FilesystemEvidenceStore(root), str(root))
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        name = f"evidence_t{next(_numbers)}"
        dsn = cluster.create_database(name, template=TEMPLATE)
        under = StoreUnderTest("postgresql", PostgresEvidenceStore(dsn, max_size=8), name)
    try:
        yield under
    finally:
        under.store.close()


@dataclass
class Tokens:
    registry: TokenRegistry
    write: str  # HOST + REPO
    other_host: str  # another host, same repository
    read: str


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    registry = TokenRegistry(tmp_path / "tokens" / "tokens.json")
    write, _ = registry.create("write", (ef.HOST,), (ef.REPO,))
    other, _ = registry.create("write", ("build-02",), (ef.REPO,))
    read, _ = registry.create("read")
    return Tokens(registry, write, other, read)


@pytest.fixture
def client(sut: StoreUnderTest, tokens: Tokens) -> Iterator[TestClient]:
    app = create_app(
        sut.store,
        tokens.registry,
        max_body=64 * 1024,
        stale_after=timedelta(hours=1),
        clock=lambda: ef.minutes(30),
    )
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client
