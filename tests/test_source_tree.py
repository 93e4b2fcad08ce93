"""Runners start only as systemd units: no `nohup`, no `run.sh &`, no PID-file backgrounding
anywhere in the shipped tree (agent/, helper/, units/, packaging/; tests are not shipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("agent", "helper", "units", "packaging")
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache"}
FORBIDDEN = {
    "nohup": re.compile(r"\bnohup\b"),
    "run.sh in the background": re.compile(r"run\.sh\b[^\n&|;]*&(?!&)"),
    "a PID file": re.compile(
        r"\bPIDFile=|\bpid[-_]?file\b|[\"'/][\w./-]*\.pid\b|>\s*[\w./-]+\.pid\b",
        re.IGNORECASE,
    ),
    "saving $! for later": re.compile(r"\$!\s*>|>\s*\S*\$!"),
    "disown": re.compile(r"\bdisown\b"),
    "setsid for a runner": re.compile(r"\bsetsid\b[^\n]*run\.sh"),
}


def shipped_files() -> list[Path]:
    out = []
    for top in SHIPPED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and not SKIP_DIRS & set(path.parts):
                out.append(path)
    return out


def violations(text: str) -> list[str]:
    return [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("nohup ./run.sh >/dev/null 2>&1 &", ["nohup", "run.sh in the background"]),
        ("cd /srv/x && ./run.sh &", ["run.sh in the background"]),
        (
            "./run.sh & echo $! > runner.pid",
            ["run.sh in the background", "a PID file", "saving $! for later"],
        ),
        ("[Service]\nPIDFile=/run/x.pid", ["a PID file"]),
        ("setsid ./run.sh", ["setsid for a runner"]),
        ("ExecStart=/srv/launchplane/runners/lane/run.sh", []),
        ("print(peer.pid)", []),
        ('open("/var/run/runner.pid", "w")', ["a PID file"]),
        ("./config.sh && ./run.sh && echo ok", []),
    ],
)
def test_the_scan_recognises_what_it_forbids(text: str, found: list[str]) -> None:
    assert violations(text) == found


def test_nothing_shipped_backgrounds_a_runner() -> None:
    files = shipped_files()
    assert any(p.name == "launchplane-runner@.service" for p in files)
    bad = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if found := violations(text):
            bad[str(path.relative_to(ROOT))] = found
    assert bad == {}
