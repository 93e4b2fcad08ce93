"""The confinement of every runner-user step: the runner template's, plus no capabilities."""

from __future__ import annotations

from typing import Any

Property = tuple[str, str, Any]

# The runner template's sandbox (units/launchplane-runner@.service), as D-Bus properties of
# a transient unit, plus what a step can do without: every capability (the bounding set is
# empty, so not even a set-uid binary could regain one), namespaces. `SystemCallFilter` is
# the template's (`@system-service`, denied calls fail with EPERM); `MemoryDenyWriteExecute`
# stays off and `/proc` stays whole because `config.sh` runs the runner's .NET code.
STEP_CONFINEMENT: tuple[Property, ...] = (
    ("NoNewPrivileges", "b", True),
    ("CapabilityBoundingSet", "t", 0),
    ("AmbientCapabilities", "t", 0),
    ("ProtectSystem", "s", "strict"),
    ("ProtectHome", "s", "yes"),
    ("PrivateTmp", "b", True),
    ("PrivateDevices", "b", True),
    ("DevicePolicy", "s", "closed"),
    ("PrivateMounts", "b", True),
    ("ProtectKernelTunables", "b", True),
    ("ProtectKernelModules", "b", True),
    ("ProtectKernelLogs", "b", True),
    ("ProtectControlGroups", "b", True),
    ("ProtectClock", "b", True),
    ("ProtectHostname", "b", True),
    ("ProtectProc", "s", "invisible"),
    ("RestrictNamespaces", "t", 0),
    ("RestrictSUIDSGID", "b", True),
    ("RestrictRealtime", "b", True),
    ("LockPersonality", "b", True),
    ("RemoveIPC", "b", True),
    ("KeyringMode", "s", "private"),
    ("SystemCallArchitectures", "as", ["native"]),
    ("SystemCallFilter", "(bas)", (True, ["@system-service"])),
    ("SystemCallErrorNumber", "i", 1),  # EPERM
    ("UMask", "u", 0o022),
)
NETWORK_FAMILIES = ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]


def step_confinement(private_network: bool) -> list[Property]:
    """The properties for one step; a step without network gets AF_UNIX only (the journal)."""
    families = ["AF_UNIX"] if private_network else NETWORK_FAMILIES
    return [*STEP_CONFINEMENT, ("RestrictAddressFamilies", "(bas)", (True, families))]
