"""A lane's unit as the agent observes it: the states as systemd names them
(org.freedesktop.systemd1.Unit) plus `unknown`, what the agent records when systemd could not
be asked (which blocks every plan); its processes; and the observed unit record."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from helper.contract.models import StrictModel


class LoadState(StrEnum):
    STUB = "stub"
    LOADED = "loaded"
    NOT_FOUND = "not-found"
    BAD_SETTING = "bad-setting"
    ERROR = "error"
    MERGED = "merged"
    MASKED = "masked"
    UNKNOWN = "unknown"


class ActiveState(StrEnum):
    ACTIVE = "active"
    RELOADING = "reloading"
    INACTIVE = "inactive"
    FAILED = "failed"
    ACTIVATING = "activating"
    DEACTIVATING = "deactivating"
    MAINTENANCE = "maintenance"
    REFRESHING = "refreshing"
    UNKNOWN = "unknown"


class UnitFileState(StrEnum):
    ENABLED = "enabled"
    ENABLED_RUNTIME = "enabled-runtime"
    LINKED = "linked"
    LINKED_RUNTIME = "linked-runtime"
    ALIAS = "alias"
    MASKED = "masked"
    MASKED_RUNTIME = "masked-runtime"
    STATIC = "static"
    DISABLED = "disabled"
    INVALID = "invalid"
    INDIRECT = "indirect"
    GENERATED = "generated"
    TRANSIENT = "transient"
    BAD = "bad"
    NONE = ""  # no unit file (not found)


# systemd reports strings: these fields take them (and records read back) by value; any other
# string is refused, so an observation systemd describes in an unknown way blocks.
LoadStateField = Annotated[LoadState, Field(strict=False)]
ActiveStateField = Annotated[ActiveState, Field(strict=False)]
UnitFileStateField = Annotated[UnitFileState, Field(strict=False)]


NOT_ENABLED = frozenset(
    {UnitFileState.NONE, UnitFileState.DISABLED, UnitFileState.STATIC, UnitFileState.INDIRECT}
)


class ProcessFacts(StrictModel):
    """A process as /proc shows it to an unprivileged reader (status, cgroup, cmdline)."""

    pid: int
    uids: tuple[int, ...]  # real, effective, saved, filesystem
    gids: tuple[int, ...]
    groups: tuple[int, ...]  # supplementary
    cmdline: tuple[str, ...]
    cgroup: str = ""


class ListenerLog(StrictModel):
    """What the lane's listener printed since its unit's current activation (its journal)."""

    session_conflicts: int = 0  # "A session for this runner already exists." lines
    listening: bool = False  # "Listening for Jobs" after the last conflict: it holds a session
    unreadable: str | None = None  # why the journal could not be read: unproven, fails closed


class UnitState(StrictModel):
    """The lane's unit as systemd and the drop-in on disk describe it."""

    unit_name: str
    load_state: LoadStateField
    active_state: ActiveStateField
    sub_state: str  # type-specific (running, dead, exited, ...): kept as systemd says it
    unit_file_state: UnitFileStateField
    main_pid: int = Field(default=0, ge=0)
    main_pid_uid: int | None = None
    main_pid_in_unit_cgroup: bool = False
    n_restarts: int = 0
    dropin_present: bool = False
    dropin_lane_mark: str | None = None
    dropin_hash: str | None = None
    dropin_hash_valid: bool = False
    dropin_path: str = ""  # where the lane's own drop-in is looked for
    # systemd's effective configuration, as it reports it (not as the files say)
    drop_in_paths: tuple[str, ...] = ()
    need_daemon_reload: bool = False
    user: str = ""
    group: str = ""
    working_directory: str = ""
    exec_start: tuple[tuple[str, ...], ...] = ()
    active_enter_monotonic: int = 0
    # the processes: MainPID, and the service user's processes outside every lane unit
    main_process: ProcessFacts | None = None
    outsiders: tuple[ProcessFacts, ...] = ()
    # the listener's journal since ActiveEnterTimestamp; None: not read (the unit is not active)
    listener_log: ListenerLog | None = None

    @property
    def exists(self) -> bool:
        """A lane's unit exists if its drop-in does, or systemd runs or enables it. The
        template alone makes every instance name loadable, so load_state says nothing."""
        running = self.active_state is not ActiveState.INACTIVE
        enabled = self.unit_file_state not in NOT_ENABLED
        return self.dropin_present or running or enabled or self.load_state is LoadState.MASKED

    @property
    def managed(self) -> bool:
        """Carries our ownership marks (lane mark and a hash that matches its content)."""
        return self.dropin_present and self.dropin_lane_mark is not None and self.dropin_hash_valid
