"""Bash completion (issue 15): shipped in the .deb, generated from the CLI's parser, so every
subcommand and option is in it; checked in real bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.cli_parser import _parser
from agent.completion import commands, render

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "packaging" / "bash-completion" / "launchplane-agent"
REGENERATE = "python -m agent.completion > packaging/bash-completion/launchplane-agent"


def test_the_shipped_file_is_what_the_parser_generates() -> None:
    assert SHIPPED.read_text() == render(_parser()), f"stale: run `{REGENERATE}`"


def test_every_subcommand_and_its_options_are_in_the_shipped_file() -> None:
    text = SHIPPED.read_text()
    subs = commands(_parser())
    assert {"plan", "apply", "restart", "remove", "status", "audits", "reconcile"} <= set(subs)
    for name, sub in subs.items():
        (line,) = [x for x in text.splitlines() if x.strip().startswith(f"{name}) opts=")]
        offered = line.split('"')[1].split()
        for action in sub._actions:
            for option in action.option_strings:
                assert option in offered, (name, option)


def test_the_package_installs_it_where_bash_completion_looks() -> None:
    install = (REPO / "packaging/debian/launchplane-runner-maintainer.install").read_text()
    assert (
        "packaging/bash-completion/launchplane-agent usr/share/bash-completion/completions/\n"
        in install
    )


def complete(*words: str) -> list[str]:
    """What bash offers after `launchplane-agent WORDS...` (the last word being typed)."""
    script = (
        f"source {SHIPPED}\n"
        'COMP_WORDS=(launchplane-agent "$@"); COMP_CWORD=$#\n'
        "_launchplane_agent\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script, "bash", *words], capture_output=True, text=True, check=True
    )
    return sorted(done.stdout.split())


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["re"], ["reconcile", "remove", "restart"]),
        (["restart", "--d"], ["--drain"]),
        (["audits", ""], None),
        (["--json", "st"], ["status"]),
        (["apply", "--confirm", ""], []),
    ],
)
def test_bash_offers_the_right_words(words: list[str], offered: list[str] | None) -> None:
    got = complete(*words)
    if offered is None:
        assert {"list", "show", "--lane"} <= set(got)
    else:
        assert got == offered
