"""The project installed in the sandbox container as the .deb will install it, and ways in.

`install()` builds, inside the running container: a venv at VENV made with Debian's
/usr/bin/python3 holding the project wheel and its pinned runtime dependencies (offline,
from wheels prepared on the host), the units from units/ in /usr/lib/systemd/system, the
users and directories of packaging/ (sysusers + tmpfiles), /etc/launchplane/lanes.toml for
LANE, and launchplane-helper.socket enabled and listening.

`HelperClient` talks to the real helper socket inside, as root or as the agent user
(`setpriv`), through the protocol client or `helperctl`. `GitHubInside` runs the GitHub
emulator inside the container (its network is private), as a transient unit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.sandbox import SCRIPT, ExecError, Sandbox

VENV = "/usr/lib/launchplane-runner-maintainer/venv"
PYTHON = f"{VENV}/bin/python"
AGENT_USER = "launchplane-agent"
SERVICE_USER = "launchplane-runner"
LANE = "cm-website-chris-testing"
REPOSITORY = "cbusillo/odoo-tenant-cm-website"
REGISTRATION_ROOT = "/srv/launchplane/runners"
RUNNER_DIR = f"{REGISTRATION_ROOT}/{LANE}"
UNIT = f"launchplane-runner@{LANE}.service"
DROPIN_DIR = f"/etc/systemd/system/{UNIT}.d"
DROPIN = f"{DROPIN_DIR}/50-lane.conf"
RUNNER_CACHE = "/var/cache/launchplane-agent/runners"
HELPER_AUDIT_LOG = "/var/log/launchplane/helper.jsonl"
# Port 80 (the container has a network of its own): the runner drops the port of --url when
# it builds its registration URL, as against a GitHub Enterprise Server (docs/github.md).
EMULATOR_PORT = 80
EMULATOR_URL = "http://127.0.0.1"
EMULATOR_UNIT = "lp-test-github-emulator.service"
EMULATOR_SITE = "/opt/lp-test/emulator-site"
INSTALL_DIR = "/scratch/lp-install"  # the host's sandbox_scratch/lp-install
CACHE_ROOT = Path(os.environ.get("LP_SYSTEMD_CACHE", "/var/tmp/launchplane-systemd"))
# The GitHub emulator imports openapi-core at module level (tests/emulators/openapi.py); it
# is a dev dependency, so the container gets it (and what it needs) next to the venv.
EMULATOR_ROOTS = ("openapi-core",)


class InstallError(RuntimeError):
    pass


# --- host side: wheels ---------------------------------------------------------------------


@dataclass(frozen=True)
class HostWheels:
    """Everything the container installs from, prepared on the host."""

    runtime_requirements: Path
    runtime: Path
    emulator_requirements: Path
    emulator: Path
    project_wheel: Path


def _uv(repo: Path) -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(repo / ".tools/bin/uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise InstallError("no uv: run the tests with `uv run` (or put uv on PATH)")


def _run(argv: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"{argv[:3]} timed out after {timeout}s") from exc
    if done.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _requirement_lines(text: str) -> list[str]:
    return [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def _name(line: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", line)
    if match is None:
        raise InstallError(f"unexpected requirement line {line!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _closure(lock: dict[str, Any], roots: tuple[str, ...]) -> set[str]:
    """Names of `roots` and everything they depend on, from uv.lock."""
    packages = {p["name"]: p for p in lock["package"]}
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack += [d["name"] for d in packages[name].get("dependencies", [])]
    return seen


def requirements(repo: Path) -> tuple[str, str]:
    """(the pinned runtime requirements, the emulator's extra pinned requirements)."""
    uv = _uv(repo)
    base = [uv, "export", "--frozen", "--no-emit-project", "--no-hashes", "--no-header"]
    runtime = _requirement_lines(_run([*base, "--no-dev"], cwd=repo, timeout=120))
    dev = _requirement_lines(_run([*base, "--only-group", "dev"], cwd=repo, timeout=120))
    lock = tomllib.loads((repo / "uv.lock").read_text(encoding="utf-8"))
    wanted = _closure(lock, EMULATOR_ROOTS) - {_name(line) for line in runtime}
    extra = [line for line in dev if _name(line) in wanted]
    return "\n".join(runtime) + "\n", "\n".join(extra) + "\n"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _pip_python(cache: Path) -> str:
    """A CPython 3.11 with pip for `sandbox.sh prepare-wheels` (Debian's python3 has no pip
    unless python3-pip is installed; python3-venv's ensurepip brings one)."""
    given = os.environ.get("LP_SANDBOX_PIP_PYTHON")
    if given:
        return given
    python = cache / "pip-venv" / "bin" / "python"
    if not python.exists():
        shutil.rmtree(cache / "pip-venv", ignore_errors=True)
        _run(["/usr/bin/python3", "-m", "venv", str(cache / "pip-venv")], cwd=cache, timeout=300)
    return str(python)


def _prepare_wheels(requirements_file: Path, out: Path, pip_python: str) -> None:
    env = {**os.environ, "LP_SANDBOX_PIP_PYTHON": pip_python}
    _run(
        ["bash", str(SCRIPT), "prepare-wheels", str(requirements_file), str(out)],
        cwd=out.parent,
        timeout=900,
        env=env,
    )


def prepare_host_wheels(repo: Path, work: Path, cache: Path = CACHE_ROOT) -> HostWheels:
    """Wheels for the container, cached under `cache` by the pinned requirements; the
    project's own wheel is built fresh into `work` (about a second)."""
    runtime_text, emulator_text = requirements(repo)
    key = hashlib.sha256(f"{runtime_text}\0{emulator_text}".encode()).hexdigest()[:16]
    final = cache / f"wheels-{key}"
    with _locked(cache):
        if not (final / ".complete").exists():
            shutil.rmtree(final, ignore_errors=True)
            building = cache / f".tmp-wheels-{key}-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            pip_python = _pip_python(cache)
            for name, text in (("runtime", runtime_text), ("emulator", emulator_text)):
                (building / f"{name}.txt").write_text(text, encoding="utf-8")
                (building / name).mkdir()
                _prepare_wheels(building / f"{name}.txt", building / name, pip_python)
            (building / ".complete").write_text("ok\n")
            building.rename(final)
            for stale in cache.glob("wheels-*"):
                if stale != final:
                    shutil.rmtree(stale, ignore_errors=True)
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    _run(
        [_uv(repo), "build", "--wheel", "--out-dir", str(project), str(repo)], cwd=repo, timeout=300
    )
    (wheel,) = project.glob("*.whl")
    return HostWheels(
        final / "runtime.txt", final / "runtime", final / "emulator.txt", final / "emulator", wheel
    )


# --- container side: the installation ------------------------------------------------------


def example_lanes_toml(repo: Path) -> str:
    """agent/examples/lanes.toml, registering at the GitHub emulator inside the container."""
    text = (repo / "agent" / "examples" / "lanes.toml").read_text(encoding="utf-8")
    if "\n[policy]\n" not in text or LANE not in text:
        raise InstallError("agent/examples/lanes.toml no longer has [policy] and the lane")
    return text.replace("\n[policy]\n", f'\n[policy]\ngithub_web_url = "{EMULATOR_URL}"\n', 1)


INSTALL_SCRIPT = r"""
umask 022
src=/src
in=$1
venv=$2
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --no-index --find-links "$in/runtime" --disable-pip-version-check \
    --no-cache-dir --quiet -r "$in/runtime.txt" "$in"/project/*.whl
install -m 0644 "$src"/units/* /usr/lib/systemd/system/
install -D -m 0644 "$src/packaging/launchplane-runner-maintainer.sysusers" \
    /usr/lib/sysusers.d/launchplane-runner-maintainer.conf
install -D -m 0644 "$src/packaging/launchplane-runner-maintainer.tmpfiles" \
    /usr/lib/tmpfiles.d/launchplane-runner-maintainer.conf
systemd-sysusers /usr/lib/sysusers.d/launchplane-runner-maintainer.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/launchplane-runner-maintainer.conf
install -D -m 0644 "$in/lanes.toml" /etc/launchplane/lanes.toml
systemctl daemon-reload
systemctl enable --now launchplane-helper.socket
# Test-only, outside the venv: what the GitHub emulator needs beyond the runtime deps.
"$venv/bin/pip" install --no-index --find-links "$in/emulator" --disable-pip-version-check \
    --no-cache-dir --quiet --no-deps --target /opt/lp-test/emulator-site -r "$in/emulator.txt"
"""


def install(sandbox: Sandbox, wheels: HostWheels, scratch: Path, repo: Path) -> None:
    """Install into the running container (see the module docstring). Needs /src and the
    host's `scratch` at /scratch."""
    staging = scratch / "lp-install"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shutil.copytree(wheels.runtime, staging / "runtime")
    shutil.copytree(wheels.emulator, staging / "emulator")
    shutil.copy2(wheels.runtime_requirements, staging / "runtime.txt")
    shutil.copy2(wheels.emulator_requirements, staging / "emulator.txt")
    (staging / "project").mkdir()
    shutil.copy2(wheels.project_wheel, staging / "project")
    (staging / "lanes.toml").write_text(example_lanes_toml(repo), encoding="utf-8")
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    sandbox.sh(INSTALL_SCRIPT, INSTALL_DIR, VENV, timeout=600)


# --- ways in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledHost:
    """The session container with the project installed: `helper` to call the real helper."""

    sandbox: Sandbox
    helper: HelperClient

    def props(self, unit: str, *names: str) -> dict[str, str]:
        return self.sandbox.show(unit, *names)


_CLIENT = r"""
import json, sys
from helper.contract.errors import HelperUnreachable
from helper.contract.client import call
from helper.contract.protocol import DEFAULT_SOCKET, Request
spec = json.loads(sys.stdin.read())
timeout = spec.pop("timeout")
try:
    response = call(DEFAULT_SOCKET, Request.model_validate({"version": 1, **spec}), timeout)
except HelperUnreachable as exc:
    print(json.dumps({"unreachable": str(exc)}))
    sys.exit(3)
print(response.model_dump_json())
"""


class HelperClient:
    """Requests to the installed helper over its real socket, from inside the container."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def as_user(self, user: str | None) -> list[str]:
        """The argv prefix that runs a command as `user` (None: root)."""
        if user is None:
            return []
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]

    def call(
        self,
        verb: str,
        lane: str = LANE,
        *,
        apply: bool = False,
        token: str | None = None,
        archive_sha256: str | None = None,
        user: str | None = AGENT_USER,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """The helper's response as a dict (ok or not). The token travels on stdin only."""
        spec: dict[str, Any] = {
            "verb": verb,
            "lane": lane,
            "dry_run": not apply,
            "timeout": timeout,
        }
        if token is not None:
            spec["token"] = token
        if archive_sha256 is not None:
            spec["archive_sha256"] = archive_sha256
        done = self.sandbox.exec(
            *self.as_user(user),
            PYTHON,
            "-I",
            "-c",
            _CLIENT,
            input=json.dumps(spec),
            check=False,
            timeout=timeout + 30,
            env={"HOME": "/"},
        )
        if done.returncode not in (0, 3):
            raise ExecError([PYTHON, "-c", "<client>"], done)
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    def ok(self, verb: str, lane: str = LANE, **kwargs: Any) -> dict[str, Any]:
        """`call`, asserting the helper answered ok; returns the result."""
        answer = self.call(verb, lane, **kwargs)
        assert answer.get("ok") is True, f"{verb}: {answer}"
        result: dict[str, Any] = answer["result"]
        return result

    def refused(self, verb: str, lane: str = LANE, **kwargs: Any) -> dict[str, Any]:
        """`call`, asserting the helper refused; returns the error body."""
        answer = self.call(verb, lane, **kwargs)
        assert answer.get("ok") is False, f"{verb} was not refused: {answer}"
        error: dict[str, Any] = answer["error"]
        return error

    def helperctl(
        self, *args: str, user: str | None = AGENT_USER, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`helperctl ARGS` from the installed venv (exit status not checked)."""
        return self.sandbox.exec(
            *self.as_user(user),
            f"{VENV}/bin/helperctl",
            *args,
            input=input,
            check=False,
            env={"HOME": "/"},
        )


_HTTP = r"""
import json, sys, urllib.error, urllib.request
spec = json.loads(sys.stdin.read())
request = urllib.request.Request(
    spec["url"], method=spec["method"],
    data=None if spec["body"] is None else json.dumps(spec["body"]).encode(),
)
request.add_header("Accept", "application/vnd.github+json")
if spec["body"] is not None:
    request.add_header("Content-Type", "application/json")
if spec["pat_file"]:
    with open(spec["pat_file"]) as handle:
        request.add_header("Authorization", "Bearer " + handle.read().strip())
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        status, raw = response.status, response.read()
except urllib.error.HTTPError as exc:
    status, raw = exc.code, exc.read()
except OSError as exc:
    print(json.dumps({"status": 0, "body": str(exc)}))
    sys.exit(0)
print(json.dumps({"status": status, "body": json.loads(raw) if raw.strip() else None}))
"""


class GitHubInside:
    """The GitHub emulator (`python -m tests.emulators.github_api`) inside the container,
    from /src with the installed venv's python, on 127.0.0.1:EMULATOR_PORT, as a transient
    unit; a personal access token for the REST side in a root-only file."""

    pat_file = "/run/lp-test/github-pat"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def start(self, runner_tarball: str | None = None) -> None:
        """Start the emulator unit (a running one, from an earlier start, is reused)."""
        if self.sandbox.systemctl("is-active", EMULATOR_UNIT, check=False).returncode == 0:
            return
        self.sandbox.systemctl("reset-failed", EMULATOR_UNIT, check=False)
        self.sandbox.sh(
            "install -d -m 0700 /run/lp-test && umask 077 && head -c 24 /dev/urandom "
            '| od -An -tx1 | tr -d " \\n" | sed "s/^/lp_test_pat_/" > "$1"',
            self.pat_file,
        )
        self.sandbox.exec(
            "systemd-run",
            f"--unit={EMULATOR_UNIT}",
            "--description=GitHub emulator for the real-systemd tests",
            "--property=WorkingDirectory=/src",
            f"--setenv=PYTHONPATH={EMULATOR_SITE}",
            "--setenv=PYTHONDONTWRITEBYTECODE=1",
            PYTHON,
            "-m",
            "tests.emulators.github_api",
            "--host=127.0.0.1",
            f"--port={EMULATOR_PORT}",
            f"--repo={REPOSITORY}",
            f"--pat-file={self.pat_file}",
            *([f"--runner-tarball={runner_tarball}"] if runner_tarball else []),
        )

    def stop(self) -> None:
        self.sandbox.systemctl("stop", EMULATOR_UNIT, check=False)
        self.sandbox.systemctl("reset-failed", EMULATOR_UNIT, check=False)

    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        spec = {
            "url": f"{EMULATOR_URL}{path}",
            "method": method,
            "body": body,
            "pat_file": self.pat_file if auth else None,
        }
        done = self.sandbox.exec(PYTHON, "-I", "-c", _HTTP, input=json.dumps(spec))
        answer = json.loads(done.stdout)
        return int(answer["status"]), answer["body"]

    def healthy(self) -> bool:
        return self.request("GET", "/_emulator/health", auth=False)[0] == 200

    def registration_token(self) -> str:
        status, body = self.request(
            "POST", f"/api/v3/repos/{REPOSITORY}/actions/runners/registration-token"
        )
        assert status == 201, body
        return str(body["token"])

    def remove_token(self) -> str:
        status, body = self.request(
            "POST", f"/api/v3/repos/{REPOSITORY}/actions/runners/remove-token"
        )
        assert status == 201, body
        return str(body["token"])

    def runners(self) -> list[dict[str, Any]]:
        status, body = self.request("GET", f"/api/v3/repos/{REPOSITORY}/actions/runners")
        assert status == 200, body
        return list(body["runners"])


# --- the agent, run by hand inside as its own user ------------------------------------------

AGENT_CREDENTIALS = "/run/lp-test-agent"


def give_agent_the_token(sandbox: Sandbox, github: GitHubInside) -> None:
    """The emulator's token as the agent's credential (what LoadCredential= would hand over)."""
    sandbox.sh(
        f"install -d -m 0700 -o {AGENT_USER} -g {AGENT_USER} {AGENT_CREDENTIALS} && "
        f'install -m 0400 -o {AGENT_USER} -g {AGENT_USER} "$1" {AGENT_CREDENTIALS}/github-token',
        github.pat_file,
    )


def agent_argv(*args: str) -> list[str]:
    """The argv, inside, of `launchplane-agent ARGS` as launchplane-agent, against the
    emulator inside, with the credential where LoadCredential= would put it."""
    return [
        "setpriv",
        f"--reuid={AGENT_USER}",
        f"--regid={AGENT_USER}",
        "--init-groups",
        "--",
        "env",
        f"LAUNCHPLANE_GITHUB_API_URL={EMULATOR_URL}/api/v3",
        f"LAUNCHPLANE_GITHUB_WEB_URL={EMULATOR_URL}",
        f"CREDENTIALS_DIRECTORY={AGENT_CREDENTIALS}",
        "HOME=/var/lib/launchplane-agent",
        f"{VENV}/bin/launchplane-agent",
        *args,
    ]


def clear_lane(
    sandbox: Sandbox, github: GitHubInside, extra_dropin_dirs: tuple[str, ...] = ()
) -> None:
    """Nothing of the example lane anywhere: systemd (stopped, disabled, unmasked, its
    drop-ins gone), disk, GitHub. `extra_dropin_dirs`: drop-in directories besides /etc's."""
    for command in (
        f"systemctl stop {UNIT}",
        f"systemctl disable {UNIT}",
        f"systemctl unmask {UNIT}",
        f"rm -rf {DROPIN_DIR} {RUNNER_DIR} {' '.join(extra_dropin_dirs)}",
        "systemctl daemon-reload",
        f"systemctl reset-failed {UNIT}",
    ):
        sandbox.exec(*command.split(), check=False)
    for runner in github.runners():
        github.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)


def run_agent(
    sandbox: Sandbox, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`launchplane-agent ARGS` inside (see agent_argv); the exit status is not checked."""
    return sandbox.exec(*agent_argv(*args), check=False, timeout=timeout)
