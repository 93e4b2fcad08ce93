"""The service shares only the record model with the agent: the import contract forbids the
whole agent package and lets through only imports of agent.contracts, so a new agent module
cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contract_forbids_every_agent_module_but_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c.get("source_modules") == ["evidence"]]
    assert contract["forbidden_modules"] == ["agent"]
    assert contract["ignore_imports"] == ["evidence.** -> agent.contracts"]
    assert "evidence" in config["root_packages"]
