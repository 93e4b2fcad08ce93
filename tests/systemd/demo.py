"""`make demo-sandbox` (as root): the whole story of the example lane on real systemd.

Boots a throwaway container, installs the project as the package does, starts the GitHub
emulator inside, then: plan -> apply (completed audit) -> SIGKILL the runner and watch
systemd bring it back -> the next pass -> restart -> remove, printing each audit record.
The container is shut down (and checked to leave nothing) at the end."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.emulators.runner.build import build as build_runner_archive
from tests.sandbox import Bind, Sandbox, prepare
from tests.systemd.installed import (
    LANE,
    UNIT,
    GitHubInside,
    give_agent_the_token,
    install,
    prepare_host_wheels,
    run_agent,
)

REPO = Path(__file__).resolve().parents[2]
MACHINE = "chris-testing"


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def agent(box: Sandbox, *args: str) -> int:
    done = run_agent(box, *args)
    print(done.stdout, end="", flush=True)
    return done.returncode


def story(box: Sandbox) -> None:
    """plan, apply, kill and recover, the next pass, status, restart, remove, audits."""
    say("launchplane-agent plan  (dry-run)")
    agent(box, "plan")
    say(f"launchplane-agent apply --lane {LANE}")
    agent(
        box,
        "apply",
        "--lane",
        LANE,
        "--idempotency-key",
        "demo-1",
        "--confirm",
        f"apply {LANE}",
    )
    pid = box.show(UNIT, "MainPID")["MainPID"]
    say(f"SIGKILL the runner (MainPID {pid}); systemd brings it back")
    box.exec("kill", "-KILL", pid)
    deadline = time.monotonic() + 60
    while True:
        props = box.show(UNIT, "MainPID", "ActiveState", "NRestarts")
        if props["ActiveState"] == "active" and props["MainPID"] not in ("0", pid):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"systemd did not restart the runner: {props}")
        time.sleep(0.5)
    print(f"MainPID {props['MainPID']}, NRestarts {props['NRestarts']}")
    time.sleep(3)  # let the new listener open its session
    say("the next pass")
    agent(
        box,
        "apply",
        "--lane",
        LANE,
        "--idempotency-key",
        "demo-2",
        "--confirm",
        f"apply {LANE}",
    )
    say("launchplane-agent status")
    agent(box, "status")
    say(f"launchplane-agent restart --lane {LANE} --apply")
    agent(
        box,
        "restart",
        "--lane",
        LANE,
        "--apply",
        "--idempotency-key",
        "demo-3",
        "--confirm",
        f"restart {LANE}",
    )
    say(f"launchplane-agent remove --lane {LANE} --apply")
    agent(
        box,
        "remove",
        "--lane",
        LANE,
        "--apply",
        "--idempotency-key",
        "demo-4",
        "--confirm",
        f"remove {LANE}",
    )
    say("launchplane-agent audits list")
    agent(box, "audits", "list")


def main() -> int:
    say("preparing the sandbox (cached after the first run)")
    prepare()
    with tempfile.TemporaryDirectory(prefix="lp-demo-") as tmp:
        scratch = Path(tmp, "scratch")
        scratch.mkdir()
        scratch.chmod(0o755)
        wheels = prepare_host_wheels(REPO, Path(tmp, "wheels"))
        archive, _ = build_runner_archive(scratch / "runner-archive")
        (scratch / "runner-archive").chmod(0o755)
        archive.chmod(0o644)
        box = Sandbox(MACHINE, [Bind(REPO, "/src", "ro"), Bind(scratch, "/scratch", "rw")])
        if box.is_up():
            box.down()
        box.up()
        try:
            say(f"installing into container '{MACHINE}' as the .deb does")
            install(box, wheels, scratch, REPO)
            github = GitHubInside(box)
            github.start(runner_tarball=f"/scratch/runner-archive/{archive.name}")
            deadline = time.monotonic() + 30
            while not github.healthy():
                if time.monotonic() > deadline:
                    raise SystemExit("the GitHub emulator did not come up")
                time.sleep(0.2)
            give_agent_the_token(box, github)
            story(box)
            github.stop()
        finally:
            box.down()
    say("container down; nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
