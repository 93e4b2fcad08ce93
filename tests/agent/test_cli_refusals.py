"""Bad input the operator meets first (issue 15): each refusal's message, exit code 2, and that
nothing on the host changed (no audit record, no cache, no runtime directory, file untouched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent import cli
from tests.github.conftest import PAT, write_secret

EXIT_USAGE = 2


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host in a temp dir: the example lanes.toml and an (empty) credential directory."""
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    for key, value in {
        "LAUNCHPLANE_LANES_FILE": str(cli.example_path("lanes.toml")),
        "LAUNCHPLANE_CREDENTIALS": str(credentials),
        "LAUNCHPLANE_AUDIT_DIR": str(tmp_path / "state" / "audits"),
        "LAUNCHPLANE_CACHE_DIR": str(tmp_path / "cache"),
        "LAUNCHPLANE_RUNTIME_DIR": str(tmp_path / "run"),
        "LAUNCHPLANE_HELPER_SOCKET": str(tmp_path / "no-helper.sock"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its mode and size: what 'nothing changed' compares (the
    pass lock under run/ is the only thing a refused `reconcile` may have made)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_size)
        for p in sorted(root.rglob("*"))
        if p.relative_to(root).parts[0] != "run"
    }


def refused(host: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    before = snapshot(host)
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert snapshot(host) == before
    assert PAT not in err
    return err


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
@pytest.mark.parametrize("command", [["plan"], ["status"], ["reconcile"]])
def test_a_credential_others_can_read_is_refused_with_the_fix(
    host: Path, capsys: pytest.CaptureFixture[str], mode: int, command: list[str]
) -> None:
    token = write_secret(host / "credentials" / "github-token", PAT)
    token.chmod(mode)
    err = refused(host, capsys, *command)
    assert f"{token}: readable by others (mode {mode:04o}): run `chmod 600 {token}`" in err


def test_a_credential_owned_by_another_user_is_refused(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = write_secret(host / "credentials" / "github-token", PAT)
    os.chown(token, 4242, 4242)
    err = refused(host, capsys, "plan")
    assert f"{token}: owned by uid 4242: run `chown root {token}` and `chmod 600 {token}`" in err


def test_a_symlinked_credential_is_reported_as_one(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = write_secret(host / "token-elsewhere", PAT)
    link = host / "credentials" / "github-token"
    link.symlink_to(real)
    err = refused(host, capsys, "plan")
    assert f"{link}: is a symlink; systemd's LoadCredential= skips symlinks" in err
    assert f"`chmod 600 {link}`" in err


def test_a_missing_credential_is_a_configuration_error(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(host, capsys, "plan")
    assert "no GitHub credential: expected github-token" in err


def test_systemds_own_directory_is_not_mode_checked(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd may grant the service user read access with an ACL (group bits show it): the
    private directory it made is trusted, the host's file was checked when it was written."""
    from agent.github.auth import TokenCredential, load_credential

    directory = host / "credentials"
    write_secret(directory / "github-token", PAT).chmod(0o640)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(directory))
    assert isinstance(load_credential(directory), TokenCredential)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(Exception, match="readable by others"):
        load_credential(directory)


NOBODY = 65534


@pytest.mark.parametrize("command", [["plan"], ["status"], ["reconcile"], ["apply", "--lane", "x"]])
def test_a_user_other_than_root_is_told_to_run_as_root(
    host: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """The credential directory is root's (here: under pytest's 0700 directory): no
    traceback, one line saying why, exit 2, nothing written."""
    write_secret(host / "credentials" / "github-token", PAT)
    before = snapshot(host)
    os.seteuid(NOBODY)
    try:
        code = cli.main(command)
    finally:
        os.seteuid(0)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err == f"launchplane-agent: must run as root (reads {host / 'credentials'})\n"
    assert snapshot(host) == before
    assert not (host / "run").exists()


def test_version_names_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    expected = metadata.version("launchplane-runner-maintainer")
    assert capsys.readouterr().out == f"launchplane-agent {expected}\n"


GHES_HALF = """
[github]
api_url = "https://ghes.example/api/v3"
"""


@pytest.mark.parametrize(
    "command",
    [["plan"], ["status"], ["reconcile"], ["apply", "--lane", "cm-website-chris-testing"]],
)
def test_a_ghes_with_one_setting_missing_is_refused_before_anything(
    host: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    """Only the API URL set: runners would register at github.com. Every entry point says so
    naming the file, the missing setting and the fix; nothing is asked of GitHub or written."""
    write_secret(host / "credentials" / "github-token", PAT)
    lanes = host / "lanes.toml"
    lanes.write_text(cli.example_path("lanes.toml").read_text() + GHES_HALF)
    monkeypatch.setenv("LAUNCHPLANE_LANES_FILE", str(lanes))
    err = refused(host, capsys, *command)
    assert f"{lanes}: github.web_url: missing: api_url points at ghes.example" in err
    assert "set web_url (for a GitHub Enterprise Server, its https://ghes.example)" in err


def test_an_environment_override_that_splits_github_is_refused(
    host: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit drop-in of old (LAUNCHPLANE_GITHUB_API_URL alone) no longer half-works."""
    write_secret(host / "credentials" / "github-token", PAT)
    monkeypatch.setenv("LAUNCHPLANE_GITHUB_API_URL", "https://ghes.example/api/v3")
    err = refused(host, capsys, "status")
    assert "github.web_url: missing: api_url points at ghes.example" in err
