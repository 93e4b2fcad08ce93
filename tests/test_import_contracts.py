"""The declared layers can fail: lint-imports, run on a copy of the tree with one offending import
added, breaks the contract that forbids it (the agent reaching a helper internal; shipped code
importing the tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.png", "github-openapi", "runner")
    for package in ("agent", "helper", "evidence", "tests", "bench"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(path: Path, line: str) -> None:
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest)


def test_the_unchanged_tree_keeps_every_contract(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "chain"),
    [
        (
            "agent/reconcile.py",
            "import helper.server",
            "the agent uses only the helper's shared contract (helper.contract) BROKEN",
            "agent.reconcile -> helper.server",
        ),
        (
            "helper/facts.py",
            "import tests.fakes.systemd",
            "nothing shipped imports tests or bench BROKEN",
            "helper.facts -> tests",
        ),
        (
            "agent/planner.py",
            "import bench.results",
            "nothing shipped imports tests or bench BROKEN",
            "agent.planner -> bench",
        ),
    ],
)
def test_an_offending_import_breaks_its_contract(
    tree: Path, module: str, line: str, contract: str, chain: str
) -> None:
    add_import(tree / module, line)
    done = lint_imports(tree)
    assert done.returncode != 0
    assert contract in " ".join(done.stdout.split())
    assert chain in done.stdout
