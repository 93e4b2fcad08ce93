"""One configuration (issue 15, item 1): lanes.toml's `[github]` and `[evidence]` tables are read
the same way by the agent's service, the CLI run by hand and the root helper; the environment
only overrides, and two settings that cannot be one GitHub are a configuration error."""

from __future__ import annotations

import pytest

from agent.settings import load_settings
from helper.contract.errors import ConfigError
from helper.contract.lanes import LanesFile, parse_lanes
from helper.facts import expected_runner_url
from tests.planner import factories as f

GHES = "https://ghes.example"


def lanes(github: str = "", policy_extra: str = "", evidence: str = "") -> LanesFile:
    policy = f.POLICY_TOML.replace("[policy]\n", f"[policy]\n{policy_extra}", 1)
    return parse_lanes(policy + f.LANE_TOML + github + evidence, "/etc/launchplane/lanes.toml")


def problems(**tables: str) -> str:
    with pytest.raises(ConfigError) as info:
        lanes(**tables)
    return str(info.value)


def endpoints(declared: LanesFile, env: dict[str, str] | None = None) -> tuple[object, ...]:
    github = load_settings(env or {}, declared).github
    return github.api_url, github.web_url, github.proxy


def helper_url(declared: LanesFile) -> str:
    """The URL the root helper gives `config.sh --url` (and expects in `.runner`)."""
    return expected_runner_url(declared.lanes[0], declared.policy)


def test_no_github_table_means_github_com_everywhere() -> None:
    declared = lanes()
    assert endpoints(declared) == ("https://api.github.com", "https://github.com", None)
    assert helper_url(declared) == f"https://github.com/{f.REPO}"
    assert load_settings({}, declared).evidence_url is None


def test_a_ghes_is_one_setting_and_every_process_derives_the_rest() -> None:
    declared = lanes(github=f'\n[github]\nweb_url = "{GHES}/"\n')
    assert endpoints(declared) == (f"{GHES}/api/v3", GHES, None)
    assert helper_url(declared) == f"{GHES}/{f.REPO}"


def test_the_api_url_alone_is_refused_naming_the_missing_setting() -> None:
    err = problems(github=f'\n[github]\napi_url = "{GHES}/api/v3"\n')
    assert (
        "/etc/launchplane/lanes.toml: github.web_url: missing: api_url points at ghes.example"
        in err
    )
    assert f"set web_url (for a GitHub Enterprise Server, its {GHES})" in err


@pytest.mark.parametrize(
    "api", ["https://api.github.com", "https://other.example/api/v3", f"{GHES}/api/v4"]
)
def test_an_api_of_another_server_is_refused(api: str) -> None:
    err = problems(github=f'\n[github]\napi_url = "{api}"\nweb_url = "{GHES}"\n')
    assert f"github.api_url: {api} is not the API of {GHES}" in err


def test_github_com_and_ghe_com_style_api_hosts_are_accepted() -> None:
    declared = lanes(
        github='\n[github]\napi_url = "https://api.acme.ghe.com"\nweb_url = "https://acme.ghe.com"\n'
    )
    assert endpoints(declared)[:2] == ("https://api.acme.ghe.com", "https://acme.ghe.com")


def test_the_legacy_policy_setting_alone_still_works_for_both_sides() -> None:
    declared = lanes(policy_extra=f'github_web_url = "{GHES}"\n')
    assert endpoints(declared) == (f"{GHES}/api/v3", GHES, None)
    assert helper_url(declared) == f"{GHES}/{f.REPO}"


def test_the_legacy_setting_may_repeat_but_not_contradict_the_github_table() -> None:
    same = lanes(
        policy_extra=f'github_web_url = "{GHES}"\n', github=f'\n[github]\nweb_url = "{GHES}"\n'
    )
    assert helper_url(same) == f"{GHES}/{f.REPO}"
    err = problems(
        policy_extra='github_web_url = "https://github.com"\n',
        github=f'\n[github]\nweb_url = "{GHES}"\n',
    )
    assert "policy.github_web_url: 'https://github.com' differs from github.web_url" in err
    assert "delete policy.github_web_url" in err


@pytest.mark.parametrize(
    ("proxy", "why"),
    [
        ("http://user:secret@proxy.example:3128", "must not carry a user or password"),
        ("socks5://proxy.example:1080", "must be an http:// or https:// proxy URL"),
        ("http://proxy.example:3128/path", "must be scheme, host and port only"),
    ],
)
def test_a_bad_proxy_is_refused_without_echoing_a_password(proxy: str, why: str) -> None:
    err = problems(github=f'\n[github]\nproxy = "{proxy}"\n')
    assert "github.proxy" in err
    assert why in err
    assert "secret" not in err


def test_proxy_and_evidence_come_from_the_file_and_the_environment_overrides() -> None:
    declared = lanes(
        github='\n[github]\nproxy = "http://proxy.example:3128"\n',
        evidence='\n[evidence]\nurl = "https://evidence.example"\n',
    )
    settings = load_settings({}, declared)
    assert settings.github.proxy == "http://proxy.example:3128"
    assert settings.evidence_url == "https://evidence.example"
    overridden = load_settings(
        {
            "LAUNCHPLANE_GITHUB_PROXY": "http://other.example:8080",
            "LAUNCHPLANE_EVIDENCE_URL": "https://evidence.other.example",
        },
        declared,
    )
    assert overridden.github.proxy == "http://other.example:8080"
    assert overridden.evidence_url == "https://evidence.other.example"


def test_an_environment_override_is_checked_against_the_file() -> None:
    declared = lanes(github=f'\n[github]\nweb_url = "{GHES}"\n')
    with pytest.raises(ConfigError, match=r"is not the API of https://ghes\.example"):
        load_settings({"LAUNCHPLANE_GITHUB_API_URL": "https://api.github.com"}, declared)
    with pytest.raises(ConfigError, match=r"github\.web_url: missing"):
        load_settings({"LAUNCHPLANE_GITHUB_API_URL": f"{GHES}/api/v3"}, lanes())


def test_the_service_and_the_cli_run_by_hand_resolve_the_same_configuration() -> None:
    """The timer's service runs with systemd's directories in its environment, an admin's
    `sudo launchplane-agent status` with none: both go through load_settings(env, lanes.toml)
    and get the endpoints the helper registers with."""
    declared = lanes(
        github=f'\n[github]\nweb_url = "{GHES}"\nproxy = "http://proxy.example:3128"\n',
        evidence='\n[evidence]\nurl = "https://evidence.example"\n',
    )
    service = load_settings(
        {
            "CREDENTIALS_DIRECTORY": "/run/credentials/launchplane-agent.service",
            "RUNTIME_DIRECTORY": "/run/launchplane-agent",
            "INVOCATION_ID": "0123",
        },
        declared,
    )
    by_hand = load_settings({"SUDO_USER": "admin", "HOME": "/root"}, declared)
    assert service.github == by_hand.github
    assert service.evidence_url == by_hand.evidence_url == "https://evidence.example"
    assert (service.github.api_url, service.github.web_url) == (f"{GHES}/api/v3", GHES)
    assert helper_url(declared) == f"{service.github.web_url}/{f.REPO}"
    assert service.credentials != by_hand.credentials  # the one thing that differs, on purpose
