"""Pure tier: README's "Install on a host" still parses into the walk the package tier runs
(test_readme_install.py), and a README that drifts from it fails loudly instead of being
walked halfway."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.package.debs import base_version, deb_path
from tests.package.readme_walk import README, ReadmeShapeError, parse

REPOSITORY = "acme/widgets"
HOST = "walk-host"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_the_readme_parses_into_one_host_walk() -> None:
    walk = parse(readme(), repository=REPOSITORY, host=HOST)
    assert walk.lane.endswith(HOST)
    assert f'repository = "{REPOSITORY}"' in walk.lanes_toml
    assert "owner/repo" not in walk.lanes_toml
    assert "build-01" not in walk.lanes_toml
    assert all("sudo" not in c.split()[:1] for c in (*walk.install, *walk.audit, *walk.remove))
    # The file `make deb` builds at pyproject's version (else the host step installs nothing).
    assert any(f"apt-get install ./{deb_path(base_version()).name}" in c for c in walk.install)
    assert "make deb" not in " ".join(walk.install)  # the build machine's line is not walked
    assert "apply = true" in walk.applied()
    assert "apply = false" not in walk.applied()
    assert any("RECORD_ID" in c for c in walk.audit)
    assert len(walk.restart) == 2
    assert "--apply" in walk.restart[1]
    assert all(walk.lane in c for c in (*walk.restart, *walk.remove))


def test_the_enterprise_server_block_is_the_only_github_setting_walked() -> None:
    walk = parse(readme(), repository=REPOSITORY, host=HOST)
    declared = tomllib.loads(walk.on_server(walk.lanes_toml, "http://127.0.0.1"))
    assert declared["github"] == {"web_url": "http://127.0.0.1"}
    assert "github_web_url" not in declared["policy"]
    assert walk.enterprise_url not in walk.on_server(walk.lanes_toml, "http://127.0.0.1")


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("## Install on a host", "## Installing", "no '## Install on a host' section"),
        ("**Restart it.**", "**Bounce it.**", "blocks changed"),
        ("   apply = false\n", "   apply = true\n", "`apply = false` once"),
        ("# on the host", "# on the target", "on the host"),
        ('lane_name = "repo-build-01"\n', "", "one lane"),
        ("owner/repo", "OWNER/REPO", "'owner/repo'"),
        ('web_url = "https://ghes.example"', 'api_url = "https://ghes.example"', "`[github]`"),
    ],
)
def test_a_readme_that_drifted_fails_loudly(old: str, new: str, complaint: str) -> None:
    text = readme()
    assert old in text, f"the fixture no longer matches the README: {old!r}"
    with pytest.raises(ReadmeShapeError, match=re.escape(complaint)):
        parse(text.replace(old, new), repository=REPOSITORY, host=HOST).applied()


def test_an_unknown_block_in_the_section_is_not_skipped_silently() -> None:
    extra = "\n**Tune it.**\n\n```sh\nsudo launchplane-agent tune\n```\n"
    text = readme().replace("\n**Read its audit.**", extra + "\n**Read its audit.**", 1)
    with pytest.raises(ReadmeShapeError, match="blocks changed"):
        parse(text, repository=REPOSITORY, host=HOST)
