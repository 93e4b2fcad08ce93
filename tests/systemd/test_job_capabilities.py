"""What a job may do on a lane (docs/helper.md, "What a job can do on a lane"), on real systemd:
the runner template's deny-list filter lets through ptrace (gdb, strace), seccomp (browser
sandboxes), personality changes and user namespaces (unshare), which
`SystemCallFilter=@system-service` and `LockPersonality=yes` refused, and adds no refusal of
perf_event_open beyond the container's own; mounts stay refused (`~@mount`, as NixOS's runner
module does), so bwrap and rootless podman still cannot mount."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.systemd.installed import SERVICE_USER, GitHubInside, InstalledHost
from tests.systemd.lane_jobs import fresh_lane, queue_job, wait_for_job

pytestmark = pytest.mark.systemd

PROBE = Path(__file__).with_name("job_probe.py").read_text(encoding="utf-8")


def test_a_job_can_trace_profile_sandbox_and_unshare_but_not_mount(
    installed: InstalledHost, github_inside: GitHubInside
) -> None:
    runner_id = fresh_lane(installed, github_inside, "capabilities-apply")
    script = f"/usr/bin/python3 -I - <<'LP_PROBE'\n{PROBE}\nLP_PROBE\n"
    done = wait_for_job(github_inside, queue_job(github_inside, runner_id, script))
    assert done["status"] == "succeeded", done
    (line,) = [x for x in done["output"].splitlines() if x.startswith("PROBE ")]
    probe = json.loads(line.removeprefix("PROBE "))
    print(probe)
    # the same probe as the same user in a bare transient unit: what the container itself
    # allows (systemd-nspawn's own seccomp filter refuses perf_event_open; a real host does not)
    outside = installed.sandbox.exec(
        "systemd-run",
        "--wait",
        "--pipe",
        "--quiet",
        f"--property=User={SERVICE_USER}",
        "/usr/bin/python3",
        "-I",
        "-c",
        PROBE,
    ).stdout
    baseline = json.loads(outside.strip().removeprefix("PROBE "))
    print("bare unit:", baseline)
    assert probe["ptrace"] == baseline["ptrace"] == "ok"
    assert probe["seccomp"] == baseline["seccomp"] == "ok"
    assert probe["personality"] == baseline["personality"] == "ok"
    assert probe["userns"] == baseline["userns"] == "ok"
    assert probe["perf_event_open"] == baseline["perf_event_open"]
    assert "Operation not permitted" in probe["userns_mount"]  # ~@mount, by choice
