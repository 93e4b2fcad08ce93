"""The installed host for the systemd benchmarks: a sandbox container of our own, with the
project installed by tests/systemd/installed.py exactly as the real-systemd tests install it.

The container is `lp-bench` (not the tests' `chris-testing`, so a test session running on the
same machine is never disturbed); its host name is set to the example lane's host, so the
example lanes.toml that `installed.install` writes applies unchanged."""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import MACHINE, REPO
from tests.sandbox import Bind, Sandbox, prepare
from tests.systemd.installed import (
    LANE,
    HelperClient,
    InstalledHost,
    install,
    prepare_host_wheels,
)


@dataclass(frozen=True)
class BenchHost:
    """The installed host and the host directory seen inside as /scratch (read-write)."""

    installed: InstalledHost
    scratch: Path


def lane_host() -> str:
    """The example lane's host_name (agent/examples/lanes.toml)."""
    doc = tomllib.loads((REPO / "agent" / "examples" / "lanes.toml").read_text(encoding="utf-8"))
    (lane,) = [x for x in doc["lanes"] if x["lane_name"] == LANE]
    return str(lane["host_name"])


def unavailable_reason() -> str | None:
    """Why the sandbox benchmarks cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root (systemd-nspawn, nsenter and cgroups need root)"
    if shutil.which("systemd-nspawn") is None and shutil.which("apt-get") is None:
        return "no systemd-nspawn and no apt-get to install it"
    return None


@contextmanager
def installed_host(progress: Callable[[str], None] = lambda _m: None) -> Iterator[BenchHost]:
    """Boot `lp-bench`, install the project (tests.systemd.installed.install), yield the host;
    always shut the container down (Sandbox.down verifies nothing is left)."""
    progress("sandbox: prepare (cached root file system) and wheels")
    prepare()
    scratch = Path(tempfile.mkdtemp(prefix="lp-bench-scratch-"))
    box = Sandbox(MACHINE, [Bind(REPO, "/src", "ro"), Bind(scratch, "/scratch", "rw")])
    try:
        (scratch / "wheels").mkdir()
        wheels = prepare_host_wheels(REPO, scratch / "wheels")
        if box.is_up():  # left running by an interrupted benchmark of ours
            box.down()
        progress(f"sandbox: boot {MACHINE}")
        box.up()
        try:
            box.exec("hostname", lane_host())
            progress("sandbox: install the project (tests/systemd/installed.py)")
            install(box, wheels, scratch, REPO)
            yield BenchHost(InstalledHost(box, HelperClient(box)), scratch)
        finally:
            box.down()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
