"""One settings object per process, built by one function; a bad value is a ConfigError that
names the variable (never SystemExit from library code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import load_settings
from helper.config import HelperConfig
from helper.contract.errors import ConfigError


def test_the_agent_settings_come_from_one_function() -> None:
    settings = load_settings(
        {
            "LAUNCHPLANE_AUDIT_DIR": "/tmp/lp/audits",
            "LAUNCHPLANE_CACHE_DIR": "/tmp/lp/cache",
            "LAUNCHPLANE_GITHUB_API_URL": "http://127.0.0.1:9/api/v3",
            "LAUNCHPLANE_GITHUB_WEB_URL": "http://127.0.0.1:9",
            "LAUNCHPLANE_EVIDENCE_URL": "https://evidence.example",
        }
    )
    assert settings.github.api_url == "http://127.0.0.1:9/api/v3"
    assert settings.github.cache_dir == Path("/tmp/lp/cache/http")
    assert settings.state_dir == Path("/tmp/lp")
    assert settings.evidence_url == "https://evidence.example"
    assert load_settings({}).evidence_url is None


def test_a_bad_agent_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid settings") as info:
        load_settings({"LAUNCHPLANE_GITHUB_API_URL": "http://github.example/api"})
    assert info.value.path == "environment"


@pytest.mark.parametrize("value", ["soon", "0", "90000"])
def test_a_bad_helper_setting_is_a_config_error_not_system_exit(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        HelperConfig.from_env({"LAUNCHPLANE_HELPER_IDLE_SECONDS": value})
    assert info.value.problems[0][0] == "LAUNCHPLANE_HELPER_IDLE_SECONDS"
    assert HelperConfig.from_env({}).idle_timeout == 30.0
