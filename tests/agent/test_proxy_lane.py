"""A lane behind `[github] proxy` completes: the agent expects the drop-in the helper renders
with the proxy (the hash gate agrees), and without the proxy the same drop-in would not do."""

from __future__ import annotations

from pathlib import Path

from agent.contracts import Gate, LanesFile, PlanPolicy, RunnerLaneMaintainerAuditRecord
from helper.contract.dropin import dropin_dir_name
from helper.contract.site import GitHubSite
from tests.agent.fakes import (
    World,
    declared_in,
    fake_agent,
)
from tests.planner import factories as f

PROXY = "http://proxy.example:3128"


def run(
    tmp_path: Path, helper_lanes: LanesFile, agent_lanes: LanesFile, world: World
) -> RunnerLaneMaintainerAuditRecord:
    agent = fake_agent(world, agent_lanes, tmp_path / "audits", helper_lanes=helper_lanes)
    policy = PlanPolicy(mode="apply", idempotency_key="k", confirmation=f"apply {f.LANE}")
    return agent.run(agent_lanes.lanes[0], policy)


def test_a_lane_behind_a_proxy_completes_and_its_drop_in_carries_it(tmp_path: Path) -> None:
    root = tmp_path / "runners"
    root.mkdir()
    world = World(root=root, unit_dir=tmp_path / "units")
    plain = declared_in(root)
    proxied = LanesFile(policy=plain.policy, lanes=plain.lanes, github=GitHubSite(proxy=PROXY))
    record = run(tmp_path, proxied, proxied, world)
    assert record.status == "completed", record.error
    dropin = world.unit_dir / dropin_dir_name(f.LANE) / "50-lane.conf"
    assert f"Environment=https_proxy={PROXY}" in dropin.read_text()


def test_a_drop_in_without_the_configured_proxy_fails_the_unit_gate(tmp_path: Path) -> None:
    root = tmp_path / "runners"
    root.mkdir()
    world = World(root=root, unit_dir=tmp_path / "units")
    plain = declared_in(root)
    proxied = LanesFile(policy=plain.policy, lanes=plain.lanes, github=GitHubSite(proxy=PROXY))
    record = run(tmp_path, plain, proxied, world)  # the helper renders without it
    assert record.status == "failed"
    failing = [g.gate for g in record.gates if not g.passed]
    assert failing[0] is Gate.UNIT_ACTIVE
    detail = next(g.detail for g in record.gates if g.gate is Gate.UNIT_ACTIVE)
    assert "hash" in detail.lower()
