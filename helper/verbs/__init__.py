"""The fixed verbs, one module each; REGISTRY maps wire names to specs with declared access.

A verb's module is imported the first time the verb is asked for (a helper started for one
`status` loads no other verb: docs/startup.md)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from helper.access import Identities, Role, check_access
from helper.contract.errors import UnknownVerb
from helper.verbs.base import VerbSpec

MODULES = {
    "status": "status",
    "install-or-update-unit": "install_or_update_unit",
    "daemon-reload": "daemon_reload",
    "enable-now": "enable_now",
    "restart": "restart",
    "stop": "stop",
    "disable": "disable",
    "remove-unit": "remove_unit",
    "install-runner": "install_runner",
    "register-runner": "register_runner",
    "unregister-runner": "unregister_runner",
    "remove-runner-directory": "remove_runner_directory",
}
"""Wire name -> module under helper.verbs (a fixed table: nothing from a request is imported)."""


class _Registry(Mapping[str, VerbSpec]):
    """The verbs by wire name, each module imported on first use; its SPEC must carry the
    name it is registered under."""

    def __init__(self) -> None:
        self._loaded: dict[str, VerbSpec] = {}

    def __getitem__(self, verb: str) -> VerbSpec:
        if verb in self._loaded:
            return self._loaded[verb]
        module = MODULES[verb]
        spec = importlib.import_module(f"helper.verbs.{module}").SPEC
        if not isinstance(spec, VerbSpec) or spec.name != verb:
            raise TypeError(f"helper.verbs.{module}.SPEC is not the spec of {verb!r}")
        self._loaded[verb] = spec
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


REGISTRY: Mapping[str, VerbSpec] = _Registry()


def authorize(uid: int | None, verb: str, ids: Identities, *, dry_run: bool = False) -> Role:
    """Pure over (uid, verb, dry run): the caller's role, or PeerRefused / UnknownVerb."""
    spec = REGISTRY.get(verb)
    if spec is None:
        raise UnknownVerb("unknown verb")
    return check_access(uid, spec.access, ids, dry_run=dry_run)
