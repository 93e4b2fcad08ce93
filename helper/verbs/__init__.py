"""The fixed verbs, one module each; REGISTRY maps wire names to specs with declared access."""

from __future__ import annotations

from helper.access import Identities, Role, check_access
from helper.contract.errors import UnknownVerb
from helper.verbs import (
    daemon_reload,
    disable,
    enable_now,
    install_or_update_unit,
    install_runner,
    register_runner,
    remove_runner_directory,
    remove_unit,
    restart,
    status,
    stop,
    unregister_runner,
)
from helper.verbs.base import VerbSpec

REGISTRY: dict[str, VerbSpec] = {
    spec.name: spec
    for spec in (
        status.SPEC,
        install_or_update_unit.SPEC,
        daemon_reload.SPEC,
        enable_now.SPEC,
        restart.SPEC,
        stop.SPEC,
        disable.SPEC,
        remove_unit.SPEC,
        install_runner.SPEC,
        register_runner.SPEC,
        unregister_runner.SPEC,
        remove_runner_directory.SPEC,
    )
}


def authorize(uid: int | None, verb: str, ids: Identities, *, dry_run: bool = False) -> Role:
    """Pure over (uid, verb, dry run): the caller's role, or PeerRefused / UnknownVerb."""
    spec = REGISTRY.get(verb)
    if spec is None:
        raise UnknownVerb("unknown verb")
    return check_access(uid, spec.access, ids, dry_run=dry_run)
