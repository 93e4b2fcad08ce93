"""The metrics file (issue 15): node_exporter's textfile format, as prometheus_client's own
parser reads it, and it changes when a lane stops being proven."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent.settings import load_settings
from agent.wiring import after_pass
from tests.agent.fakes import NOW, agent_for
from tests.planner import factories as f

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(path: Path) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def lane(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (f"launchplane_{name}", tuple(sorted({"lane": f.LANE, **labels}.items())))


def test_the_file_follows_the_lane_from_proven_to_not(tmp_path: Path) -> None:
    now = [NOW]
    agent, world, _ = agent_for(tmp_path, clock=lambda: now[0], apply=True)
    prom = tmp_path / "launchplane.prom"
    paths = load_settings({"LAUNCHPLANE_METRICS_FILE": str(prom)})

    records = agent.reconcile_pass()
    after_pass(paths, agent, records, 1.5)
    proven = samples(prom)
    assert proven[lane("lane_proven")] == 1
    assert proven[lane("lane_apply")] == 1
    assert proven[lane("lane_failing")] == 0
    assert proven[lane("lane_github_online")] == 1
    assert proven[lane("lane_github_busy")] == 0
    assert proven[lane("lane_unit_restarts")] == 0
    assert proven[lane("lane_seconds_since_proof")] == 0
    assert proven[("launchplane_pass_duration_seconds", ())] == 1.5
    assert proven[("launchplane_pass_lanes", ())] == 1
    assert proven[("launchplane_pass_github_requests", ())] > 0

    now[0] = NOW + timedelta(minutes=10)
    world.online_when_running = False
    world.set_online(False)  # the runner drops off GitHub and does not come back
    records = agent.reconcile_pass(every_lane=True)
    assert records[0].status == "failed"
    after_pass(paths, agent, records, 2.0)
    lost = samples(prom)
    assert lost[lane("lane_proven")] == 0
    assert lost[lane("lane_failing")] == 1
    assert lost[lane("lane_failing_gate", gate="github_exactly_one_online")] == 1
    assert lost[lane("lane_github_online")] == 0
    assert lost[lane("lane_seconds_since_proof")] == 600  # the last proof stays the old one
    assert lost != proven


def test_a_lane_with_no_record_yet_is_not_proven_and_has_no_proof_age(tmp_path: Path) -> None:
    agent, _, _ = agent_for(tmp_path, apply=False)
    prom = tmp_path / "launchplane.prom"
    after_pass(load_settings({"LAUNCHPLANE_METRICS_FILE": str(prom)}), agent, [], 0.1)
    got = samples(prom)
    assert got[lane("lane_proven")] == 0
    assert got[lane("lane_apply")] == 0
    assert lane("lane_seconds_since_proof") not in got
