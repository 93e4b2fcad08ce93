"""The agent's records: observed state, plan and audit record (desired state comes from helper)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from agent.blockers import BlockerCode, blocker_key
from agent.unit_states import ListenerLog, ProcessFacts, UnitState
from helper.contract.lanes import HostPolicy, LanesFile, RunnerLaneMaintainerDesiredState
from helper.contract.models import StrictModel

__all__ = [  # defined elsewhere, part of the records all the same
    "HostPolicy",
    "LanesFile",
    "ListenerLog",
    "ProcessFacts",
    "RunnerLaneMaintainerDesiredState",
    "UnitState",
]


class Record(StrictModel):
    """Boundary model: unknown fields refused, immutable, no coercion."""


# --- observed state -------------------------------------------------------------------------


class GithubLabel(Record):
    id: int | None = None
    name: str
    type: Literal["read-only", "custom"]


class GithubRunner(Record):
    """One runner as GitHub lists it."""

    id: int
    name: str
    os: str = "linux"
    status: Literal["online", "offline"]
    busy: bool
    labels: tuple[GithubLabel, ...]
    runner_group_id: int | None = None  # organization runners: the group GitHub placed it in
    version: str | None = None  # GitHub sets it once the runner has connected

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset(label.name.lower() for label in self.labels)


class GithubInventory(Record):
    """Every runner of the repository whose name equals the lane name (0, 1 or more)."""

    runners: tuple[GithubRunner, ...]
    total_count: int = Field(ge=0)


class RunnerFile(Record):
    """What `.runner` says about the registration in a runner directory."""

    agent_name: str
    git_hub_url: str
    agent_id: int | None = None


class LocalRunnerDirectory(Record):
    path: str
    exists: bool
    is_directory: bool = False
    is_symlink: bool = False
    owner_uid: int | None = None
    runner_file: RunnerFile | None = None
    runner_file_error: str | None = None
    has_run_script: bool = False
    stale_migrated_files: tuple[str, ...] = ()
    archive_sha256: str | None = None  # `.launchplane-archive`: the archive it came from


class RunnerVersions(Record):
    """The runner's versions: installed (from the lane's archive record, else GitHub's
    `version`), the newest release GitHub offers, and when the agent first saw that one."""

    installed: str | None = None
    installed_source: Literal["archive", "github"] | None = None
    latest: str | None = None
    latest_seen_at: datetime | None = None


class BaselineFinding(Record):
    code: str
    message: str
    fixable_by_apply: bool = False


class BaselineState(Record):
    """Lane-scoped host readiness; `ready` only when there is no finding at all."""

    checked_at: datetime
    findings: tuple[BaselineFinding, ...] = ()
    evidence: dict[str, str] = Field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.findings


class GithubProblem(Record):
    """Why GitHub's inventory could not be read: the adapter's error code (github_unavailable,
    github_auth_failed, github_rate_limited, ...), its redacted message, and for a rate limit
    when GitHub allows the next request."""

    code: str
    message: str
    retry_at: datetime | None = None


class GithubRunnerGroup(Record):
    """The organization's runner group a lane declares, as GitHub lists it; `id` is None when
    the organization has no group of that name."""

    name: str
    id: int | None


class RunnerLaneMaintainerObservedState(Record):
    """Everything read fresh in one pass. `None` means "could not be observed" and blocks."""

    lane_name: str
    host_name: str
    observed_at: datetime
    service_user_uid: int | None
    github: GithubInventory | None
    local: LocalRunnerDirectory
    unit: UnitState
    baseline: BaselineState | None
    github_problem: GithubProblem | None = None  # set when `github` is None because of it
    runner_group: GithubRunnerGroup | None = None  # looked up when the lane declares one
    runner_versions: RunnerVersions | None = None  # None: not observed (no release check)


# --- plan -----------------------------------------------------------------------------------


class Shape(StrEnum):
    ABSENT = "absent"
    GITHUB_ONLY = "github_only"
    LOCAL_SERVICE_ONLY = "local_service_only"
    SUPERVISED_ACTIVE = "supervised_active"
    SUPERVISED_INACTIVE = "supervised_inactive"
    MISMATCHED_LABELS = "mismatched_labels"
    UNKNOWN_CONFLICT = "unknown_conflict"


class Action(StrEnum):
    CREATE = "create"
    ADOPT = "adopt"
    RECONCILE = "reconcile"
    RESTART = "restart"
    REMOVE = "remove"
    UPGRADE = "upgrade"


class Operation(StrEnum):
    """What the operator asked for; the planner turns it into an action."""

    RECONCILE = "reconcile"
    RESTART = "restart"
    REMOVE = "remove"


class Step(StrEnum):
    FETCH_REGISTRATION_TOKEN = "fetch_registration_token"  # noqa: S105 - a step name
    FETCH_REMOVE_TOKEN = "fetch_remove_token"  # noqa: S105 - a step name
    DOWNLOAD_RUNNER = "download_runner"
    INSTALL_RUNNER = "install_runner"
    UNREGISTER_RUNNER = "unregister_runner"
    DELETE_GITHUB_RUNNER = "delete_github_runner"
    REGISTER_RUNNER = "register_runner"
    SET_LABELS = "set_labels"
    INSTALL_OR_UPDATE_UNIT = "install_or_update_unit"
    DAEMON_RELOAD = "daemon_reload"
    ENABLE_NOW = "enable_now"
    RESTART = "restart"
    STOP = "stop"
    DISABLE = "disable"
    REMOVE_UNIT = "remove_unit"
    REMOVE_DIRECTORY = "remove_directory"
    VERIFY = "verify"
    WAIT_IDLE = "wait_idle"  # until GitHub shows the runner idle (bounded), before an upgrade


class Blocker(Record):
    code: BlockerCode
    message: str


class PlanPolicy(Record):
    """How the plan was asked for: operation, mode and the operator's confirmations."""

    operation: Operation = Operation.RECONCILE
    mode: Literal["dry_run", "apply"] = "dry_run"
    idempotency_key: str | None = None
    confirmation: str | None = None
    drain_confirmed: bool = False
    max_observation_age_seconds: int = Field(default=300, gt=0)
    # restart/remove of a busy runner: wait this long for its job (None: the lane's
    # runner_drain_wait_seconds; 0: do not wait, a busy runner blocks without --drain)
    drain_wait_seconds: int | None = Field(default=None, ge=0, le=86400)

    def expected_confirmation(self, lane_name: str) -> str:
        """`apply L`, `restart L` or `remove L`: the words an operator must type."""
        verb = "apply" if self.operation is Operation.RECONCILE else self.operation.value
        return f"{verb} {lane_name}"


class RunnerLaneMaintainerPlan(Record):
    lane_name: str
    planned_at: datetime
    status: Literal["ready", "blocked"]
    action: Action
    shape: Shape
    blockers: tuple[Blocker, ...]
    next_steps: tuple[str, ...]
    steps: tuple[Step, ...]
    policy: PlanPolicy

    @model_validator(mode="after")
    def _status_matches_blockers(self) -> RunnerLaneMaintainerPlan:
        if (self.status == "blocked") != bool(self.blockers):
            raise ValueError("a plan is blocked exactly when it has blockers")
        keys = [blocker_key(b.code, b.message) for b in self.blockers]
        legacy = [(b.code.value, b.message) for b in self.blockers]  # records before the rank
        if keys != sorted(keys) and legacy != sorted(legacy):
            raise ValueError("blockers must be sorted, root cause first")
        return self

    @property
    def needs_registration_token(self) -> bool:
        return Step.FETCH_REGISTRATION_TOKEN in self.steps


# --- audit record ---------------------------------------------------------------------------


class Gate(StrEnum):
    """The eight completion gates of DESIGN.md, in order."""

    DECLARED = "declared_and_allowlisted"
    UNIT_ACTIVE = "unit_enabled_active_owned"
    PROCESS_USER = "main_pid_runs_as_service_user"
    GITHUB_ONLINE = "github_exactly_one_online"
    LABELS = "github_labels_match"
    BASELINE = "baseline_ready_after_start"
    EVIDENCE = "record_carries_evidence"
    MANAGED_PATHS = "restart_remove_refuse_unmanaged"


class GateResult(Record):
    gate: Gate
    passed: bool
    detail: str


class RunnerLaneMaintainerAuditRecord(Record):
    """Append-only evidence of one pass over one lane."""

    schema_version: Literal[1] = 1
    record_id: str
    idempotency_key: str | None
    lane_name: str
    status: Literal["planned", "completed", "removed", "failed"]
    created_at: datetime
    desired: RunnerLaneMaintainerDesiredState
    observed_pre: RunnerLaneMaintainerObservedState
    observed_post: RunnerLaneMaintainerObservedState | None = None
    plan: RunnerLaneMaintainerPlan
    gates: tuple[GateResult, ...] = ()
    failed_gate: Gate | None = None
    error: str | None = None
    provider_evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _completed_needs_every_gate(self) -> RunnerLaneMaintainerAuditRecord:
        if self.status == "completed":
            passed = {g.gate for g in self.gates if g.passed}
            if passed != set(Gate) or self.observed_post is None or self.plan.status != "ready":
                raise ValueError("a completed record needs every gate passed and observed_post")
        if self.status == "removed" and (
            self.plan.action is not Action.REMOVE or self.observed_post is None
        ):
            raise ValueError("a removed record needs a remove plan and observed_post")
        if self.status == "failed" and self.failed_gate is None and self.error is None:
            raise ValueError("a failed record names its failed gate or error")
        return self
