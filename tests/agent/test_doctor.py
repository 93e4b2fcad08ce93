"""`doctor` (issue 15, item 3): a healthy host passes every check; each injected fault is named
by its code, with a fix, and makes the whole run fail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from agent.contracts import BaselineFinding, LanesFile, PlanPolicy
from agent.doctor import DoctorProbes, render_checks, run_doctor
from agent.doctor_checks import AGENT_SERVICE, UNITS
from agent.github.errors import (
    GitHubAuthError,
    GitHubCredentialError,
    GitHubNotFound,
    GitHubUnavailable,
)
from agent.observe_local import observe_directory
from agent.orphans import Orphan, find_orphans
from agent.settings import AgentSettings, load_settings
from helper.contract.errors import ConfigError
from helper.contract.systemd import UnitProps
from tests.agent.fakes import NOW, UID, FakeGitHub, agent_for
from tests.planner import factories as f

HEALTHY = {
    "launchplane-helper.socket": ("active", "listening"),
    "launchplane-agent.timer": ("active", "waiting"),
    "launchplane-agent.path": ("active", "waiting"),
    AGENT_SERVICE: ("inactive", "dead"),
}


class Host:
    """A healthy host in tmp_path (one completed lane); each test breaks one thing."""

    def __init__(self, tmp_path: Path) -> None:
        agent, self.world, self.declared = agent_for(tmp_path)
        agent.run(
            self.declared.lanes[0],
            PlanPolicy(mode="apply", idempotency_key="k", confirmation=f"apply {f.LANE}"),
        )
        self.lanes_file = tmp_path / "lanes.toml"
        self.lanes_file.write_text("# stands in for the file the lanes came from\n")
        self.lanes_file.chmod(0o644)
        self.units = {u: UnitProps(u, "loaded", a, s) for u, (a, s) in HEALTHY.items()}
        self.paths = load_settings(
            {
                "LAUNCHPLANE_LANES_FILE": str(self.lanes_file),
                "LAUNCHPLANE_AUDIT_DIR": str(tmp_path / "audits"),
                "LAUNCHPLANE_UNIT_DIR": str(self.world.unit_dir),
                "LAUNCHPLANE_CREDENTIALS": str(tmp_path / "credentials"),
            },
            self.declared,
        )
        self.github = FakeGitHub(self.world)
        self.credential: Callable[[], object] = lambda: None
        self.date = NOW
        self.os: Sequence[BaselineFinding] = ()
        self.orphans: Callable[[LanesFile], Sequence[Orphan]] = lambda d: find_orphans(
            d, f.HOST, str(self.world.unit_dir), self.github, lambda u: f.USER if u == UID else None
        )

    def probes(self) -> DoctorProbes:
        def units(names: Sequence[str]) -> Mapping[str, UnitProps]:
            return {n: self.units.get(n, UnitProps(n)) for n in names}

        def date() -> object:
            if isinstance(self.date, Exception):
                raise self.date
            return self.date

        return DoctorProbes(
            units=units,
            credential=self.credential,
            github=lambda: self.github,
            github_date=date,  # type: ignore[arg-type]
            runner_directory=observe_directory,
            os_findings=lambda: self.os,
            orphans=self.orphans,
            now=lambda: NOW,
            agent_uid=UID,
        )

    def codes(
        self, declared: LanesFile | ConfigError | None = None, paths: AgentSettings | None = None
    ) -> set[str]:
        checks = run_doctor(declared or self.declared, paths or self.paths, self.probes())
        failed = [c for c in checks if not c.passed]
        assert all(c.fix for c in failed), failed  # every finding says what to do
        text = render_checks(checks)
        assert ("all checks passed" in text) is (not failed)
        return {c.code for c in failed}


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_a_healthy_host_passes_every_check(host: Host) -> None:
    checks = run_doctor(host.declared, host.paths, host.probes())
    assert [c for c in checks if not c.passed] == []
    assert {c.check for c in checks} == {
        "units",
        "files",
        "lanes_file",
        "github",
        "urls",
        "os_dependencies",
        "clock",
        "orphans",
        "audit_store",
    }
    github = next(c for c in checks if c.check == "github")
    assert "never minted" in github.detail  # says what was (and was not) checked


@pytest.mark.parametrize("unit", UNITS)
def test_a_stopped_unit_is_named(host: Host, unit: str) -> None:
    host.units[unit] = UnitProps(unit, "loaded", "inactive", "dead")
    assert host.codes() == {"unit_inactive"}


@pytest.mark.parametrize("unit", ["launchplane-agent.path", AGENT_SERVICE])
def test_a_start_limited_unit_is_named(host: Host, unit: str) -> None:
    host.units[unit] = UnitProps(unit, "loaded", "failed", "failed", result="start-limit-hit")
    assert host.codes() == {"unit_start_limited"}


def test_a_lanes_file_others_can_write_is_named(host: Host) -> None:
    host.lanes_file.chmod(0o666)
    assert host.codes() == {"policy_file_untrusted"}


def test_a_bad_credential_is_named_and_github_is_not_asked(host: Host) -> None:
    def refuse() -> None:
        raise GitHubCredentialError("github-token: readable by others (mode 0644): run `chmod 600`")

    host.credential = refuse
    host.orphans = lambda d: []
    assert host.codes() == {"credential_invalid"}
    assert host.github.stats.requests == 0


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (GitHubAuthError("Bad credentials", status=401), "github_auth_failed"),
        (GitHubNotFound("Not Found", status=404), "github_repository_not_visible"),
        (GitHubUnavailable("connect failed"), "github_unreachable"),
    ],
)
def test_github_failures_are_named(host: Host, error: Exception, code: str) -> None:
    def fail(repository: str) -> list[object]:
        raise error

    host.github.list_runners = fail  # type: ignore[method-assign, assignment]
    host.orphans = lambda d: []
    assert host.codes() == {code}


def test_an_invalid_lanes_file_is_one_finding(host: Host) -> None:
    error = ConfigError("/etc/launchplane/lanes.toml", [("lanes[0].labels", "missing")])
    assert host.codes(error) == {"lanes_invalid"}


def test_a_lane_that_fails_the_allowlists_is_named(host: Host) -> None:
    policy = host.declared.policy.model_copy(update={"allowed_repositories": ("other/repo",)})
    assert "repository_not_allowed" in host.codes(
        LanesFile(policy=policy, lanes=host.declared.lanes)
    )


def test_a_runner_registered_elsewhere_is_named(host: Host) -> None:
    runner = host.world.lane_dir(f.LANE) / ".runner"
    runner.write_text(runner.read_text().replace("https://github.com/", "https://ghes.example/"))
    assert host.codes() == {"runner_url_mismatch"}


def test_a_web_url_override_the_helper_does_not_see_is_named(host: Host) -> None:
    env = {
        "LAUNCHPLANE_GITHUB_WEB_URL": "https://ghes.example",
        "LAUNCHPLANE_GITHUB_API_URL": "https://ghes.example/api/v3",
    }
    paths = load_settings({**host.paths.environment, **env}, host.declared)
    assert "web_url_override" in host.codes(paths=paths)


def test_missing_os_dependencies_are_named_with_the_package(host: Host) -> None:
    host.os = (
        BaselineFinding(
            code="runner_os_dependency_missing",
            message="libicu not found by ldconfig (Debian package libicu72)",
        ),
    )
    checks = run_doctor(host.declared, host.paths, host.probes())
    (bad,) = [c for c in checks if not c.passed]
    assert (bad.code, bad.fix) == ("runner_os_dependency_missing", "apt-get install libicu72")


@pytest.mark.parametrize("seconds", [-300, 90])
def test_clock_skew_against_githubs_date_is_named(host: Host, seconds: int) -> None:
    host.date = NOW + timedelta(seconds=seconds)
    assert host.codes() == {"clock_skew"}


def test_an_unreachable_date_is_named(host: Host) -> None:
    host.date = OSError("connection refused")  # type: ignore[assignment]
    assert host.codes() == {"clock_unchecked"}


def test_an_orphaned_lane_is_named(host: Host) -> None:
    undeclared = LanesFile(policy=host.declared.policy, lanes=())
    assert host.codes(undeclared) == {"orphan"}


def test_a_damaged_audit_record_is_named_and_left_in_place(host: Host) -> None:
    records = sorted(Path(host.paths.audit_dir).glob("*/*.json"))
    records[0].write_text("{not json")
    assert host.codes() == {"audit_record_invalid"}
    assert records[0].exists()  # doctor reads; it never quarantines
    Path(host.paths.audit_dir, ".quarantine", f.LANE).mkdir(parents=True)
    Path(host.paths.audit_dir, ".quarantine", f.LANE, "x.json").write_text("{}")
    assert host.codes() == {"audit_record_invalid", "audit_records_quarantined"}


def test_a_missing_audit_store_is_named(host: Host) -> None:
    paths = replace(host.paths, audit_dir=str(Path(host.paths.audit_dir).parent / "nowhere"))
    assert host.codes(paths=paths) == {"audit_store_missing"}


def test_a_symlinked_lanes_file_is_named_with_a_fix(host: Host, tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    host.lanes_file.rename(real)
    host.lanes_file.symlink_to(real)
    checks = run_doctor(host.declared, host.paths, host.probes())
    (bad,) = [c for c in checks if not c.passed]
    assert bad.code == "policy_file_untrusted"
    assert bad.fix == f"replace {host.lanes_file} by the real file it points to"


def test_no_system_bus_is_named_as_such(host: Host) -> None:
    for unit in (*UNITS, AGENT_SERVICE):
        host.units[unit] = UnitProps(
            unit, "unknown (FileNotFoundError: is the system bus reachable?)", "unknown"
        )
    assert host.codes() == {"systemd_unreachable"}


def test_github_is_asked_even_without_lanes(host: Host) -> None:
    def fail(repository: str) -> list[object]:
        raise GitHubAuthError("Bad credentials", status=401)

    host.github.list_runners = fail  # type: ignore[method-assign, assignment]
    host.orphans = lambda d: []
    assert "github_auth_failed" in host.codes(LanesFile(policy=host.declared.policy, lanes=()))
