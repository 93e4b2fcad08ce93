"""Whether a host has what actions/runner needs on Linux (its config.sh check, its
installdependencies.sh list): a pure check, one finding per missing dependency."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from agent.contracts import BaselineFinding

CODE = "runner_os_dependency_missing"


@dataclass(frozen=True)
class Library:
    """A shared library the runner loads, as `ldconfig -p` lists it, and its Debian 12 package."""

    name: str
    soname: re.Pattern[str]
    debian_package: str


# config.sh refuses to configure without ldd, ldconfig and a libicu; installdependencies.sh
# installs libkrb5-3, zlib1g, libssl and libicu (liblttng-ust only traces: not required).
TOOLS: Mapping[str, str] = {"ldd": "libc-bin", "ldconfig": "libc-bin"}
LIBRARIES: tuple[Library, ...] = (
    Library("libicu", re.compile(r"^\s*libicuuc\.so\.\d+\s"), "libicu72"),
    Library("libssl", re.compile(r"^\s*libssl\.so\.(3|1\.1)\s"), "libssl3"),
    Library("libkrb5", re.compile(r"^\s*libgssapi_krb5\.so\.2\s"), "libkrb5-3"),
    Library("zlib", re.compile(r"^\s*libz\.so\.1\s"), "zlib1g"),
)


def os_dependency_findings(
    tools: Mapping[str, str | None], ldconfig_listing: str | None
) -> list[BaselineFinding]:
    """`tools`: each of TOOLS' names -> its path, or None when absent; `ldconfig_listing`: the
    output of `ldconfig -p` (None when it could not run: every library counts as missing)."""
    out = [
        BaselineFinding(code=CODE, message=f"{name} not found (Debian package {package})")
        for name, package in TOOLS.items()
        if not tools.get(name)
    ]
    lines = (ldconfig_listing or "").splitlines()
    for library in LIBRARIES:
        if not any(library.soname.match(line) for line in lines):
            out.append(
                BaselineFinding(
                    code=CODE,
                    message=f"{library.name} not found by ldconfig "
                    f"(Debian package {library.debian_package})",
                )
            )
    return out


def probe_os_dependencies() -> list[BaselineFinding]:
    """The check against this host (the only impure part; the caller wires it in)."""
    tools = {name: shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") for name in TOOLS}
    listing: str | None = None
    if tools["ldconfig"]:
        try:
            done = subprocess.run(
                [tools["ldconfig"], "-p"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        listing = done.stdout if done is not None and done.returncode == 0 else None
    return os_dependency_findings(tools, listing)
