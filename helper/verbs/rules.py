"""Refusal rules shared by the verbs: safety, ownership marks and state preconditions."""

from __future__ import annotations

from helper.contract.errors import Conflict, LaneRefused, NotOwned
from helper.contract.identifiers import Finding
from helper.facts import LaneFacts


def require_safe(facts: LaneFacts) -> None:
    """Unsafe ownership or modes on the registration path refuse every mutating verb."""
    if facts.findings:
        raise LaneRefused(f"unsafe lane paths: {facts.findings[0].message}", facts.findings)


def require_user(facts: LaneFacts) -> None:
    if facts.service_ids is None:
        raise LaneRefused(
            f"service user {facts.lane.service_user} does not exist",
            [Finding("service_user_missing", "service_user", "no such user on this host")],
        )
    if facts.service_ids[0] == 0:
        raise LaneRefused(
            "service user resolves to uid 0",
            [Finding("invalid_service_user", "service_user", "resolves to uid 0")],
        )


def refuse_foreign_dropin(facts: LaneFacts) -> None:
    if facts.dropin.state == "foreign":
        raise NotOwned(f"{facts.dropin.path}: {facts.dropin.problem}")


def require_owned_dropin(facts: LaneFacts) -> None:
    refuse_foreign_dropin(facts)
    if facts.dropin.state != "owned":
        raise NotOwned(f"{facts.dropin.path} does not exist: the unit is not managed here")


def require_current_dropin(facts: LaneFacts) -> None:
    require_owned_dropin(facts)
    if not facts.dropin.current:
        raise Conflict(
            "dropin_outdated", "the drop-in differs from lanes.toml: install-or-update-unit first"
        )


def refuse_foreign_runner(facts: LaneFacts) -> None:
    runner_file = facts.runner_dir.runner_file
    if runner_file.state == "foreign":
        raise NotOwned(f"{facts.runner_dir.path}: {runner_file.problem}")


def require_registered(facts: LaneFacts) -> None:
    refuse_foreign_runner(facts)
    if facts.runner_dir.runner_file.state != "ours":
        raise Conflict("not_registered", f"{facts.runner_dir.path} has no .runner: register first")


def require_stopped(facts: LaneFacts) -> None:
    if facts.unit.running:
        raise Conflict(
            "unit_active", f"{facts.unit.unit} is {facts.unit.active_state}: stop it first"
        )


def require_runner_files(facts: LaneFacts, *names: str) -> None:
    kinds = {"config.sh": facts.runner_dir.config_sh, "run.sh": facts.runner_dir.run_sh}
    if not facts.runner_dir.exists:
        raise Conflict("runner_not_installed", f"{facts.runner_dir.path} does not exist")
    for name in names:
        if kinds[name] != "file":
            raise Conflict(
                "runner_not_installed", f"{facts.runner_dir.path}/{name} is {kinds[name]}"
            )
