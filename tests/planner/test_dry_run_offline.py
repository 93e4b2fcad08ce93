"""A dry-run plan needs no GitHub token and touches no network."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from agent import cli


class NetworkUsed(AssertionError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkUsed("the dry-run tried to open a socket")


def test_dry_run_plan_opens_no_socket_and_reads_no_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(socket, "socket", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert cli.main(["--json", "plan", "--example"]) == cli.EXIT_OK
    (result,) = json.loads(capsys.readouterr().out)
    assert (result["status"], result["action"], result["shape"]) == ("ready", "create", "absent")
    assert result["steps"][0] == "fetch_registration_token"


def test_the_guard_would_catch_a_socket() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", _refuse)
        with pytest.raises(NetworkUsed):
            socket.socket()


def test_bad_lanes_file_exits_2_naming_file_and_field(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "lanes.toml"
    bad.write_text('[policy]\nallowed_repositories = "x"\n')
    assert cli.main(["--lanes", str(bad), "plan", "--observation", "x.json"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{bad}: policy.allowed_repositories" in err
