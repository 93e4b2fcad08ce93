"""Credentials from the systemd credential directory, and GitHub App authentication."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from agent.github import (
    AppCredential,
    GitHubAuthError,
    GitHubCredentialError,
    GitHubSettings,
    TokenCredential,
    load_credential,
)
from helper.contract.errors import ConfigError
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_app import GitHubApp
from tests.github.conftest import (
    APP_ID,
    INSTALLATION_ID,
    PAT,
    REPO,
    MakeClient,
    Sleeps,
    write_app_credentials,
    write_secret,
)

INSTALLATION = "apps/get-repo-installation"
MINT = "apps/create-installation-access-token"
LIST = "actions/list-self-hosted-runners-for-repo"


def test_token_file(tmp_path: Path) -> None:
    write_secret(tmp_path / "github-token", f"  {PAT}\n")
    credential = load_credential(tmp_path)
    assert isinstance(credential, TokenCredential)
    assert credential.token.get_secret_value() == PAT
    assert PAT not in repr(credential)


def test_credentials_directory_comes_from_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_secret(tmp_path / "github-token", PAT)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert isinstance(load_credential(), TokenCredential)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(GitHubCredentialError, match="CREDENTIALS_DIRECTORY"):
        load_credential()


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({}, "no GitHub credential"),
        ({"github-token": ""}, "empty"),
        ({"github-token": "two words"}, "one token on one line"),
        ({"github-token": PAT, "github-app.json": "{}"}, "keep one"),
        ({"github-app.json": '{"app_id": 1}'}, "github-app-key.pem missing"),
        (
            {"github-app.json": '{"app_id": 1}', "github-app-key.pem": "junk"},
            "not an unencrypted PEM",
        ),
        ({"github-app.json": '{"app": 1}', "github-app-key.pem": "junk"}, "app_id: Field required"),
    ],
)
def test_bad_credential_directories_fail_closed(
    tmp_path: Path, files: dict[str, str], problem: str
) -> None:
    for name, content in files.items():
        write_secret(tmp_path / name, content)
    with pytest.raises(GitHubCredentialError, match=problem) as caught:
        load_credential(tmp_path)
    assert PAT not in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_app_credential_and_its_jwt(tmp_path: Path, app_key: tuple[str, str]) -> None:
    credential = load_credential(write_app_credentials(tmp_path, app_key[0]))
    assert isinstance(credential, AppCredential)
    assert credential.app_id == APP_ID
    assert app_key[0] not in repr(credential)
    from datetime import UTC, datetime

    now = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
    token = credential.jwt(now).get_secret_value()
    claims = jwt.decode(
        token, app_key[1], algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims["iss"] == APP_ID
    assert claims["exp"] - claims["iat"] == 600
    assert claims["iat"] == int(now.timestamp()) - 60


def _register_app(app: GitHubApp, public_pem: str) -> None:
    app.state.add_app(APP_ID, public_pem, INSTALLATION_ID, [REPO])


def test_app_auth_mints_caches_and_renews_installation_tokens(
    app: GitHubApp,
    make_mock_client: MakeClient,
    app_key: tuple[str, str],
    sleeps: Sleeps,
    tmp_path: Path,
) -> None:
    _register_app(app, app_key[1])
    app.state.add_runner(REPO, "lane-1")
    client = make_mock_client(load_credential(write_app_credentials(tmp_path, app_key[0])))
    assert [r.name for r in client.list_runners(REPO)] == ["lane-1"]
    assert len(app.requests(INSTALLATION)) == 1
    assert len(app.requests(MINT)) == 1
    client.registration_token(REPO)
    assert len(app.requests(MINT)) == 1  # cached
    sleeps.clock.advance(54 * 60)  # 6 minutes left: still used
    client.list_runners(REPO)
    assert len(app.requests(MINT)) == 1
    sleeps.clock.advance(2 * 60)  # 4 minutes left: renewed first
    client.list_runners(REPO)
    assert len(app.requests(MINT)) == 2
    assert len(app.requests(INSTALLATION)) == 1  # the installation of a repository is remembered
    identities = {r["identity"] for r in app.requests(LIST)}
    assert identities == {"installation"}


def test_app_with_a_fixed_installation_skips_the_lookup(
    app: GitHubApp, make_mock_client: MakeClient, app_key: tuple[str, str], tmp_path: Path
) -> None:
    _register_app(app, app_key[1])
    credential = load_credential(write_app_credentials(tmp_path, app_key[0], INSTALLATION_ID))
    make_mock_client(credential).list_runners(REPO)
    assert app.requests(INSTALLATION) == []
    assert len(app.requests(MINT)) == 1


def test_a_revoked_installation_token_is_minted_again_once(
    app: GitHubApp, make_mock_client: MakeClient, app_key: tuple[str, str], tmp_path: Path
) -> None:
    _register_app(app, app_key[1])
    client = make_mock_client(load_credential(write_app_credentials(tmp_path, app_key[0])))
    client.list_runners(REPO)
    with app.state.mutate() as world:  # GitHub revoked it
        for token in world.tokens.values():
            if token.kind == "installation":
                token.expires_at = 0
    client.list_runners(REPO)
    assert len(app.requests(MINT)) == 2
    assert [r["status"] for r in app.requests(LIST)] == [200, 401, 304]


def test_an_unknown_app_is_refused(
    app: GitHubApp, make_mock_client: MakeClient, app_key: tuple[str, str], tmp_path: Path
) -> None:
    client = make_mock_client(load_credential(write_app_credentials(tmp_path, app_key[0])))
    with pytest.raises(GitHubAuthError, match="JSON web token"):
        client.list_runners(REPO)


def test_app_auth_over_the_wire(
    emulator: GitHubEmulator, make_client: MakeClient, app_key: tuple[str, str], tmp_path: Path
) -> None:
    emulator.state.add_app(APP_ID, app_key[1], INSTALLATION_ID, [REPO])
    client = make_client(load_credential(write_app_credentials(tmp_path, app_key[0])))
    token = client.registration_token(REPO)
    assert token.repository == REPO
    assert [r["operation"] for r in emulator.requests()] == [
        INSTALLATION,
        MINT,
        "actions/create-registration-token-for-repo",
    ]


def test_settings_refuse_plain_http_off_loopback() -> None:
    assert (
        GitHubSettings(api_url="http://127.0.0.1:9/api/v3/").api_url == "http://127.0.0.1:9/api/v3"
    )
    with pytest.raises(ValueError, match="loopback"):
        GitHubSettings(api_url="http://github.example.com/api/v3")
    with pytest.raises(ValueError, match="credentials"):
        GitHubSettings(web_url="https://user:pw@github.com")
    assert GitHubSettings(web_url="https://ghes.example/").web_url == "https://ghes.example"


def test_settings_from_the_environment() -> None:
    env = {
        "LAUNCHPLANE_GITHUB_API_URL": "https://ghes.example/api/v3",
        "LAUNCHPLANE_GITHUB_WEB_URL": "https://ghes.example",
    }
    settings = GitHubSettings.from_environment(env)
    assert (settings.api_url, settings.web_url) == (
        "https://ghes.example/api/v3",
        "https://ghes.example",
    )
    assert GitHubSettings.from_environment({}).api_url == "https://api.github.com"
    with pytest.raises(ConfigError, match="LAUNCHPLANE_GITHUB_API_URL"):
        GitHubSettings.from_environment({"LAUNCHPLANE_GITHUB_API_URL": "ftp://x"})
    assert isinstance(TokenCredential(token=SecretStr("x")).token, SecretStr)


def test_credentials_as_systemd_names_them_are_found(tmp_path: Path) -> None:
    """LoadCredential=github:<dir> hands `github-token` over as `github_github-token`."""
    from agent.github.auth import TokenCredential, load_credential

    write_secret(tmp_path / "github_github-token", "ghp_fromsystemd0123456789abcdefABCDEF\n")
    credential = load_credential(tmp_path)
    assert isinstance(credential, TokenCredential)
