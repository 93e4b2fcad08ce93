"""The service shares only the record model with the agent: the import contract names every
agent module but the record's (agent.contracts and the enums it is built from: blockers,
unit_states), so a new agent module cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contract_forbids_every_agent_module_but_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c.get("source_modules") == ["evidence"]]
    modules = {
        f"agent.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "agent").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    record = {"agent.contracts", "agent.blockers", "agent.unit_states"}
    assert modules - set(contract["forbidden_modules"]) == record
    assert "evidence" in config["root_packages"]
