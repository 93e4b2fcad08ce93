"""Tokens: minted by the CLI and shown once, kept only as hashes, listed without the secret,
revocable; and no token string is ever persisted by either store (the canary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from evidence.cli import main
from evidence.ingest import ROUTE
from evidence.tokens import digest
from tests.evidence import factories as ef
from tests.evidence.conftest import StoreUnderTest, Tokens
from tests.evidence.postgres import Cluster


def _config(tmp_path: Path) -> str:
    path = tmp_path / "evidence.toml"
    path.write_text(f'state_directory = "{tmp_path / "state"}"\n')
    return str(path)


def test_cli_shows_a_token_once_and_keeps_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    argv = ["--config", config, "tokens", "create", "--host", ef.HOST, "--repository", ef.REPO]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("lpe_")
    assert token not in err
    stored = (tmp_path / "state" / "tokens.json").read_text()
    assert token not in stored
    assert token.split("_", 2)[2] not in stored
    assert digest(token) in stored
    assert (tmp_path / "state" / "tokens.json").stat().st_mode & 0o077 == 0
    assert main(["--config", config, "tokens", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["kind"], e["hosts"], e["repositories"]) for e in listed] == [
        ("write", [ef.HOST], [ef.REPO])
    ]
    assert "sha256" not in listed[0]
    assert token not in json.dumps(listed)
    assert main(["--config", config, "tokens", "revoke", listed[0]["token_id"]]) == 0
    assert main(["--config", config, "tokens", "revoke", listed[0]["token_id"]]) == 1


def test_cli_scopes_are_canonical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    repo = f"https://github.com/{ef.REPO}.git"
    assert (
        main(["--config", config, "tokens", "create", "--host", ef.HOST, "--repository", repo]) == 0
    )
    capsys.readouterr()
    assert main(["--config", config, "tokens", "list"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["repositories"] == [ef.REPO]


@pytest.mark.parametrize(
    "argv",
    [
        ["tokens", "create", "--host", "bad host", "--repository", "o/r"],
        ["tokens", "create", "--host", "h", "--repository", "not-a-repository"],
        ["tokens", "create"],
        ["tokens", "create", "--host", "h"],
        ["tokens", "create", "--read", "--host", "h", "--repository", "o/r"],
    ],
)
def test_cli_refuses_a_token_without_a_clear_scope(tmp_path: Path, argv: list[str]) -> None:
    assert main(["--config", _config(tmp_path), *argv]) == 2
    assert not (tmp_path / "state" / "tokens.json").exists()


def test_canary_no_token_string_is_ever_persisted(
    client: TestClient, tokens: Tokens, sut: StoreUnderTest, request: pytest.FixtureRequest
) -> None:
    for rec in (ef.record("planned"), ef.record("completed"), ef.record("failed")):
        headers = {"Authorization": f"Bearer {tokens.write}", "Idempotency-Key": rec.record_id}
        assert client.post(ROUTE, content=ef.body(rec), headers=headers).status_code == 201
    read = {"Authorization": f"Bearer {tokens.read}"}
    assert client.get(ROUTE, headers=read).status_code == 200
    if sut.kind == "filesystem":
        persisted = b"".join(p.read_bytes() for p in Path(sut.where).rglob("*") if p.is_file())
        text = persisted.decode()
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        text = cluster.dump(sut.where)
        assert "k-completed-" in text  # the dump does hold the records
    assert sut.store.count() == 3
    for token in (tokens.write, tokens.read, tokens.other_host):
        assert token not in text
        assert token.split("_", 2)[2] not in text
