"""An organization lane end to end in the emulated tier: the agent's real pass with its real
GitHub adapter against the validating emulator over loopback HTTP, the helper's real
`runner_steps.py register` argv (so `config.sh --url <web>/<org> --runnergroup NAME`) running
the runner emulator as the service user, and run.sh as the "unit". Only systemd is in memory
(tests/agent/fakes.py); the real-systemd tier does the same from the helper's socket."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import JsonValue, SecretStr

from agent.audit_store import FilesystemAuditStore
from agent.contracts import Gate, HostPolicy, LanesFile
from agent.github import GitHubClient
from agent.reconcile import Reconciler
from agent.wiring import assemble
from helper.config import HelperConfig
from helper.contract.protocol import Verb
from helper.steps import register_spec
from tests.agent.fakes import FakeHelper, FakeHost, FakeUnits, MemorySchedule, World
from tests.emulators.clock import EmulatorClock
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.openapi import SpecValidator
from tests.github.conftest import ORG, RunnerUser, seed
from tests.github.runner_host import WAIT
from tests.planner import factories as f

GROUP = "build"


@dataclass
class RunnerProcesses:
    """The runner emulator's processes this test started (killed by process group after)."""

    user: RunnerUser
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, directory: str) -> None:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": directory,
            "RUNNER_EMULATOR_HEARTBEAT_SECONDS": "0.05",
        }
        self.started.append(
            subprocess.Popen(
                self.user.argv(["./run.sh"]),
                cwd=directory,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=WAIT)


class EmulatedHelper(FakeHelper):
    """The helper's runner steps for real (extract as the service user's files, register with
    the helper's own argv), the unit as a run.sh process; systemd's side stays in memory."""

    def __init__(
        self, world: World, lanes: LanesFile, user: RunnerUser, cache: Path, runs: RunnerProcesses
    ) -> None:
        super().__init__(world, lanes)
        self.user, self.cache, self.runs = user, cache, runs
        self.register_argv: tuple[str, ...] = ()

    def answer(
        self, verb: Verb, lane: str, token: SecretStr | None, archive: str | None = None
    ) -> dict[str, JsonValue]:
        (desired,) = self.lanes.lanes_named(lane)
        directory = Path(desired.runner_directory)
        (sha,) = [p.name.removesuffix(".tar.gz") for p in (self.cache / "runners").glob("*.tar.gz")]
        if verb == "install-runner":
            with tarfile.open(self.cache / "runners" / f"{sha}.tar.gz") as tar:
                tar.extractall(directory, filter="data")
            for path in [directory, *directory.rglob("*")]:
                os.chown(path, self.user.uid, self.user.gid, follow_symlinks=False)
            return {"verb": verb}
        if verb == "register-runner":
            assert token is not None
            config = HelperConfig(
                python="/usr/bin/python3", runner_cache_dir=str(self.cache / "runners")
            )
            self.register_argv = register_spec(desired, self.lanes.policy, config, sha).argv
            done = subprocess.run(
                self.user.argv(list(self.register_argv)),
                input=token.get_secret_value().encode() + b"\n",
                capture_output=True,
                timeout=WAIT,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return {"verb": verb}
        if verb in ("enable-now", "restart"):
            self.runs.start(str(directory))
        return super().answer(verb, lane, token)


@pytest.fixture
def emulator(
    runner_tarball: tuple[Path, str], validator: SpecValidator, clock: EmulatorClock
) -> Iterator[GitHubEmulator]:
    """The validating emulator on port 80 of a random loopback address: config.sh drops the
    port of --url when it builds its registration URL (docs/github.md), and the helper's
    register step gives config.sh a fixed environment (no http_proxy)."""
    if os.geteuid() != 0:
        pytest.skip("port 80 needs root: the runner registers at --url's host without its port")
    host = f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    gh = GitHubEmulator(
        host=host,
        port=80,
        validate=True,
        runner_tarball=runner_tarball[0],
        clock=clock,
        validator=validator,
    )
    seed(gh.state)
    with gh:
        yield gh
    assert gh.validation_errors == [], gh.validation_errors


@pytest.fixture
def runner_root(runner_user: RunnerUser) -> Iterator[Path]:
    """The registration root and the agent's cache, outside pytest's 0700 tmp tree (the
    service user reads the cached archive and owns its lane directory)."""
    root = Path(tempfile.mkdtemp(prefix="lp-org-lane-"))
    for sub in ("runners", "cache"):
        (root / sub).mkdir()
    for path in (root, root / "runners", root / "cache"):
        path.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class OrgSetup:
    """Everything one organization-lane pass runs against."""

    emulator: GitHubEmulator
    client: GitHubClient
    user: RunnerUser
    root: Path
    runs: RunnerProcesses
    scratch: Path


@pytest.fixture
def setup(
    emulator: GitHubEmulator,
    client: GitHubClient,
    runner_user: RunnerUser,
    runner_root: Path,
    tmp_path: Path,
) -> Iterator[OrgSetup]:
    runs = RunnerProcesses(runner_user)
    try:
        yield OrgSetup(emulator, client, runner_user, runner_root, runs, tmp_path)
    finally:
        runs.stop()


def org_agent(s: OrgSetup) -> tuple[Reconciler, EmulatedHelper]:
    emulator, client, user, root, runs, audits = (
        s.emulator,
        s.client,
        s.user,
        s.root,
        s.runs,
        s.scratch,
    )
    policy = HostPolicy(
        allowed_repositories=(),
        approved_hosts=(f.HOST,),
        allowed_registration_roots=(str(root / "runners"),),
        allowed_service_users=(f.USER,),
        github_web_url=emulator.web_url,
        allowed_organizations=(ORG,),
        allowed_runner_groups=(GROUP,),
    )
    lane = f.desired(
        repository=None,
        organization=ORG,
        runner_group=GROUP,
        registration_root=str(root / "runners"),
        apply=True,
    )
    declared = LanesFile(policy=policy, lanes=(lane,))
    world = World(root=root / "runners", unit_dir=audits / "units", main_pid_uid=user.uid)

    class Host(FakeHost):
        def user_uid(self, name: str) -> int | None:
            return user.uid if name == f.USER else None

    helper = EmulatedHelper(world, declared, user, root / "cache", runs)
    agent = assemble(
        declared,
        github=client,
        helper=helper,
        units=FakeUnits(world),
        host=Host(world),
        store=FilesystemAuditStore(audits / "audits"),
        evidence=None,
        cache_dir=root / "cache",
        schedule=MemorySchedule(),
        clock=lambda: datetime.now(UTC),
        sleep=lambda seconds: time.sleep(min(seconds, 0.05)),
        architecture="x64",
        online_timeout=WAIT,
        poll_interval=0.05,
    )
    return agent, helper


def test_an_organization_lane_in_its_runner_group_reaches_completed(setup: OrgSetup) -> None:
    emulator = setup.emulator
    group = emulator.state.add_runner_group(ORG, GROUP)
    emulator.state.add_runner_group(ORG, "deploy")
    agent, helper = org_agent(setup)
    (record,) = agent.reconcile_pass(every_lane=True)
    assert record.status == "completed", (record.error, record.failed_gate, record.gates)
    assert {g.gate for g in record.gates if g.passed} == set(Gate)
    # registered at the organization's URL, into the declared group, as the helper runs it
    assert helper.register_argv[4] == "register"
    assert helper.register_argv[6:8] == (f"{emulator.web_url}/{ORG}", f.LANE)
    assert helper.register_argv[-1] == GROUP
    (runner,) = emulator.state.runners_of(ORG)
    assert runner.runner_group_id == group.id
    assert record.observed_post is not None
    assert record.observed_post.runner_group is not None
    assert record.observed_post.runner_group.id == group.id
    # the record says the scope
    assert (record.desired.organization, record.desired.runner_group) == (ORG, GROUP)
    assert record.desired.repository is None
    # only organization endpoints were used; the repository ones never
    used = {r["operation"] for r in emulator.requests() if r["operation"]}
    assert "actions/create-registration-token-for-org" in used
    assert "actions/list-self-hosted-runner-groups-for-org" in used
    assert not {op for op in used if op.endswith("-for-repo") or op.endswith("-from-repo")}


def test_a_missing_runner_group_blocks_without_a_token(setup: OrgSetup) -> None:
    emulator = setup.emulator
    emulator.state.add_runner_group(ORG, "deploy")  # not the declared group
    agent, helper = org_agent(setup)
    (record,) = agent.reconcile_pass(every_lane=True)
    assert record.plan.status == "blocked"
    assert [b.code.value for b in record.plan.blockers] == ["runner_group_missing"]
    assert emulator.requests("actions/create-registration-token-for-org") == []
    assert emulator.state.runners_of(ORG) == []
    assert helper.register_argv == ()


def test_a_runner_moved_to_another_group_is_no_longer_proven(setup: OrgSetup) -> None:
    """The steady pass re-checks the gates: GitHub now shows the runner in another group."""
    emulator = setup.emulator
    emulator.state.add_runner_group(ORG, GROUP)
    deploy = emulator.state.add_runner_group(ORG, "deploy")
    agent, _helper = org_agent(setup)
    (first,) = agent.reconcile_pass(every_lane=True)
    assert first.status == "completed", (first.error, first.gates)
    (runner,) = emulator.state.runners_of(ORG)
    with emulator.state.mutate():
        runner.runner_group_id = deploy.id  # an owner moved it in the organization's settings
    assert (
        agent.verifier.holds(first.desired, agent.observer.observe_one(first.desired)) is not None
    )
