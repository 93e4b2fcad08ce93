"""The root helper obeys lanes.toml only when root alone can change it: the file and every
parent directory owned by root and not writable by group or others (a sticky, root-owned
directory such as /tmp is accepted: nobody else can replace what is in it)."""

from __future__ import annotations

from pathlib import Path

from helper.contract.errors import ConfigError
from helper.contract.lanes import LanesFile, load_lanes
from helper.contract.policy_paths import ROOT_UID, policy_path_problems

__all__ = ["ROOT_UID", "UntrustedPolicy", "load_trusted_lanes", "policy_path_problems"]


class UntrustedPolicy(ConfigError):
    """lanes.toml, or a directory above it, could be changed by someone other than root."""

    code = "policy_untrusted"


def load_trusted_lanes(path: str | Path, owner: int = ROOT_UID) -> LanesFile:
    """load_lanes, refused with ConfigError when anyone but root could have changed the file."""
    problems = policy_path_problems(path, owner)
    if problems:
        raise UntrustedPolicy(
            str(path), problems, what="policy file: not trusted by the root helper"
        )
    return load_lanes(path)
