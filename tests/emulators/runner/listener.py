#!/usr/bin/python3
"""actions/runner emulator: `bin/Runner.Listener` behind config.sh and run.sh (stdlib only).

Follows the real runner where the product can see it: flags and `ACTIONS_RUNNER_INPUT_<NAME>`
environment inputs (read, masked and removed from the environment), the refusal of an
already-configured directory, `.runner` (camelCase JSON with a UTF-8 BOM), `.credentials`,
`.credentials_rsaparams` (0600), the registration flow from `--url`, sessions that keep the
runner online, jobs (run, reported, cancelled on shutdown), and the listener's exit codes:

    0 success (and after SIGINT)   1 terminated error   2 retryable error   3 updating
    5 session conflict   143 after SIGTERM (the .NET runtime's default for a handled SIGTERM)

Unknown arguments are warned about, not fatal. SIGINT and SIGTERM stop taking jobs, cancel
a running one (SIGINT to its process group, SIGTERM after 7.5 s, SIGKILL 2.5 s later),
report it cancelled and delete the session, as Runner.Listener does.

Emulator knobs (environment; defaults in brackets): RUNNER_EMULATOR_HEARTBEAT_SECONDS [1],
RUNNER_EMULATOR_RETRY_SECONDS [5], RUNNER_EMULATOR_SESSION_RETRY_SECONDS [30],
RUNNER_EMULATOR_SESSION_CONFLICT_SECONDS [240], RUNNER_EMULATOR_HTTP_TIMEOUT [10].
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

VERSION = "2.329.0"
COMMIT = "0000000000000000000000000000000000000000"
SUCCESS, TERMINATED, RETRYABLE, UPDATING, RUN_ONCE_UPDATING, SESSION_CONFLICT = 0, 1, 2, 3, 4, 5
SIGTERM_EXIT = 128 + signal.SIGTERM
ENV_PREFIX = "ACTIONS_RUNNER_INPUT_"
COMMANDS = ("configure", "remove", "run", "warmup")
ARGS = (
    "auth",
    "labels",
    "name",
    "runnergroup",
    "token",
    "url",
    "work",
    "pat",
    "jitconfig",
    "startuptype",
)
FLAGS = (
    "check",
    "commit",
    "ephemeral",
    "help",
    "local",
    "no-default-labels",
    "replace",
    "disableupdate",
    "once",
    "unattended",
    "version",
)
SECRET_ARGS = ("token", "pat", "jitconfig")
DEFAULT_LABELS = ("self-hosted", "Linux", "X64")
BOM = "\ufeff"
ALREADY_CONFIGURED = (
    "Cannot configure the runner because it is already configured. To reconfigure the runner, "
    "run 'config.cmd remove' or './config.sh remove' first."
)


class Failure(Exception):
    """Ends the command with an error line and an exit code (TerminatedError unless told)."""

    def __init__(self, message: str, code: int = TERMINATED) -> None:
        super().__init__(message)
        self.code = code


# --- command line and ACTIONS_RUNNER_INPUT_* ------------------------------------------------


@dataclass
class Command:
    commands: list[str] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    env_args: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def arg(self, name: str) -> str | None:
        return self.args.get(name) or self.env_args.get(name) or None

    def flag(self, name: str) -> bool:
        if name in self.flags:
            return True
        return self.env_args.get(name, "").strip().lower() == "true"

    def mask(self, text: str) -> str:
        for value in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def parse(argv: Sequence[str], environ: MutableMapping[str, str]) -> Command:
    """Arguments like actions/runner's CommandLineParser; inputs from the environment
    (case-insensitive names, trimmed, empty ignored) removed from it once read."""
    command = Command()
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        if item.startswith("--"):
            name = item[2:].lower()
            if name in ARGS and index + 1 < len(items) and not items[index + 1].startswith("--"):
                command.args[name] = items[index + 1]
                index += 2
                continue
            if name in FLAGS:
                command.flags.add(name)
            else:
                command.unknown.append(item)
        elif item.lower() in COMMANDS and not command.commands:
            command.commands.append(item.lower())
        else:
            command.unknown.append(item)
        index += 1
    for key in [k for k in environ if k.upper().startswith(ENV_PREFIX)]:
        value = environ.pop(key).strip()
        name = key[len(ENV_PREFIX) :].lower()
        if value:
            command.env_args[name] = value
    for name in SECRET_ARGS:
        secret = command.arg(name)
        if secret:
            command.secrets.append(secret)
    return command


# --- console --------------------------------------------------------------------------------


class Console:
    def __init__(self, command: Command) -> None:
        self._command = command

    def line(self, text: str = "") -> None:
        print(self._command.mask(text), flush=True)

    def ok(self, text: str) -> None:
        self.line(f"\u221a {text}")

    def error(self, text: str) -> None:
        print(self._command.mask(text), file=sys.stderr, flush=True)

    def section(self, title: str) -> None:
        self.line()
        self.line(f"# {title}")
        self.line()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- HTTP -----------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def http(
    method: str,
    url: str,
    *,
    body: Any = None,
    authorization: str | None = None,
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
    request.add_header("User-Agent", f"GitHubActionsRunner-emulator/{VERSION}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    timeout = float(os.environ.get("RUNNER_EMULATOR_HTTP_TIMEOUT", "10"))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        raise HttpError(exc.code, parsed) from None
    return json.loads(raw) if raw else None


def _type_key(exc: HttpError) -> str:
    return str(exc.body.get("typeKey", "")) if isinstance(exc.body, dict) else ""


# --- files ----------------------------------------------------------------------------------


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.runner = root / ".runner"
        self.credentials = root / ".credentials"
        self.rsaparams = root / ".credentials_rsaparams"

    def configured(self) -> bool:
        return self.runner.exists()

    def settings(self) -> dict[str, Any]:
        try:
            value = json.loads(self.runner.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise Failure(f"Runner is not configured: {exc}") from None
        if not isinstance(value, dict):
            raise Failure("Runner is not configured: .runner is not an object")
        return value

    def credential_data(self) -> dict[str, Any]:
        try:
            value = json.loads(self.credentials.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise Failure(f"Cannot read .credentials: {exc}") from None
        data = value.get("data") if isinstance(value, dict) else None
        if not isinstance(data, dict):
            raise Failure("Cannot read .credentials: no data")
        return data


def write_json(path: Path, value: Mapping[str, Any], *, mode: int | None = None) -> None:
    """Like the runner's IOUtil.SaveObject: indented JSON, UTF-8 with a byte order mark."""
    text = BOM + json.dumps(value, indent=2)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o666 if mode is None else mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(path, mode)


def rsa_parameters() -> dict[str, str]:
    """The shape of RSAParametersSerializable. Random bytes of the right lengths: the emulated
    service never checks the key (the stdlib has no RSA), but the file is a secret all the same."""

    def b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode()

    return {
        "d": b64(256),
        "dp": b64(128),
        "dq": b64(128),
        "exponent": "AQAB",
        "inverseQ": b64(128),
        "modulus": b64(256),
        "p": b64(128),
        "q": b64(128),
    }


# --- URLs -----------------------------------------------------------------------------------


def is_hosted(host: str) -> bool:
    host = host.lower()
    return host in ("github.com", "www.github.com", "github.localhost") or host.endswith(".ghe.com")


def registration_url(github_url: str) -> str:
    """Where the runner trades its token: api.<host>/actions/runner-registration on github.com,
    <host>/api/v3/actions/runner-registration on GitHub Enterprise Server (and the emulator).
    Scheme and host only: the port of --url is dropped, as the real runner's string does
    (docs/github.md); a GHES on another port is reached through http(s)_proxy, if at all."""
    parts = urlsplit(github_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if is_hosted(host):
        return f"{parts.scheme}://api.{netloc}/actions/runner-registration"
    return f"{parts.scheme}://{netloc}/api/v3/actions/runner-registration"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not parts.netloc or len(segments) not in (1, 2):
        raise Failure(f"'{url}' should point to an org or repository.")
    return url.rstrip("/")


# --- configure ------------------------------------------------------------------------------


def prompt(command: Command, name: str, description: str, default: str = "") -> str:
    value = command.arg(name)
    if value:
        return value
    if command.flag("unattended"):
        if default:
            return default
        raise Failure(
            f"Invalid configuration provided for {name}. Terminating unattended configuration."
        )
    try:
        answer = input(f"{description} ").strip()
    except EOFError:
        answer = ""
    if answer or default:
        return answer or default
    raise Failure(
        f"Invalid configuration provided for {name}. Terminating unattended configuration."
    )


def labels_of(command: Command) -> list[str]:
    raw = command.arg("labels") or ""
    out: list[str] = []
    for label in raw.split(","):
        label = label.strip()  # noqa: PLW2901
        if label and label.lower() not in (x.lower() for x in out):
            out.append(label)
    return out


def tenant(url: str, token: str, event: str) -> dict[str, Any]:
    try:
        answer = http(
            "POST",
            registration_url(url),
            body={"url": url, "runner_event": event},
            authorization=f"RemoteAuth {token}",
        )
    except HttpError as exc:
        raise Failure(
            f"Http response code: {exc.status} from 'POST {registration_url(url)}'"
        ) from None
    except OSError as exc:
        raise Failure(f"Failed to connect to {registration_url(url)}: {exc}") from None
    if not isinstance(answer, dict) or not answer.get("url") or not answer.get("token"):
        raise Failure("Unexpected answer from the runner registration endpoint")
    return answer


def choose_pool(command: Command, service: Mapping[str, Any]) -> dict[str, Any]:
    """The runner group (agent pool) to join, as ConfigurationManager.cs chooses it: with more
    than one self-hosted group, `--runnergroup` (default: the default group) matched without
    case; with only one, the default group and `--runnergroup` is not asked for."""
    base = str(service["url"]).rstrip("/")
    answer = http("GET", f"{base}/pools", authorization=f"Bearer {service['token']}")
    pools = [p for p in (answer or {}).get("value") or [] if isinstance(p, dict)]
    default = next((p for p in pools if p.get("isInternal")), None)
    wanted: str | None = None
    self_hosted = [p for p in pools if not p.get("isHosted")]
    if len(self_hosted) > 1:
        wanted = prompt(
            command,
            "runnergroup",
            "Enter the name of the runner group to add this runner to:",
            str(default["name"]) if default else "default",
        )
        pool = next((p for p in self_hosted if str(p["name"]).lower() == wanted.lower()), None)
    else:
        pool = default
    if pool is None and wanted is None:
        raise Failure("Could not find any self-hosted runner groups. Contact support.")
    if pool is None:
        raise Failure(f'Could not find any self-hosted runner group named "{wanted}".')
    return pool


def register_agent(
    command: Command,
    layout: Layout,
    console: Console,
    *,
    service: Mapping[str, Any],
    name: str,
    keys: Mapping[str, str],
    pool: Mapping[str, Any],
) -> dict[str, Any]:
    """Add the agent (or, with --replace, take over the one of the same name)."""
    no_default = command.flag("no-default-labels")
    labels = labels_of(command)
    if no_default and not labels:
        raise Failure("--labels is required when --no-default-labels is used")
    agent_labels = [] if no_default else [{"name": x, "type": "system"} for x in DEFAULT_LABELS]
    agent_labels += [{"name": x, "type": "user"} for x in labels]
    base = str(service["url"]).rstrip("/")
    auth = f"Bearer {service['token']}"
    found = http("GET", f"{base}/agents?name={quote(name)}", authorization=auth)
    existing = (found or {}).get("value") or []
    body = {
        "name": name,
        "labels": agent_labels,
        "ephemeral": command.flag("ephemeral"),
        "disableUpdate": command.flag("disableupdate"),
        "version": VERSION,
        "poolId": pool["id"],
        "osDescription": f"Linux {os.uname().release}",
        "publicKey": {"exponent": keys["exponent"], "modulus": keys["modulus"]},
    }
    try:
        if existing:
            console.line("A runner exists with the same name")
            if not command.flag("replace"):
                layout.rsaparams.unlink(missing_ok=True)
                raise Failure(f"A runner exists with the same name {name}.")
            agent = http("PUT", f"{base}/agents/{existing[0]['id']}", body=body, authorization=auth)
            console.ok("Successfully replaced the runner")
        else:
            agent = http("POST", f"{base}/agents", body=body, authorization=auth)
            console.ok("Runner successfully added")
    except HttpError as exc:
        layout.rsaparams.unlink(missing_ok=True)
        said = exc.body.get("message") if isinstance(exc.body, dict) else None
        raise Failure(f"Failed to add the runner: {said or f'HTTP {exc.status}'}") from None
    return dict(agent)


def configure(command: Command, layout: Layout, console: Console) -> int:
    console.line("--------------------------------------------------------------------------------")
    console.line("|        GitHub Actions self-hosted runner registration (emulator)             |")
    console.line("--------------------------------------------------------------------------------")
    if layout.configured():
        raise Failure(ALREADY_CONFIGURED)
    console.section("Authentication")
    url = check_url(prompt(command, "url", "What is the URL of your repository?"))
    token = prompt(command, "token", "What is your runner register token?")
    command.secrets.append(token)
    service = tenant(url, token, "register")
    console.ok("Connected to GitHub")
    keys = rsa_parameters()
    write_json(layout.rsaparams, keys, mode=0o600)

    console.section("Runner Registration")
    try:
        pool = choose_pool(command, service)
    except Failure:
        layout.rsaparams.unlink(missing_ok=True)
        raise
    name = prompt(command, "name", "Enter the name of runner:", socket.gethostname() or "myrunner")
    agent = register_agent(
        command, layout, console, service=service, name=name, keys=keys, pool=pool
    )
    authorization = agent["authorization"]
    write_json(
        layout.credentials,
        {
            "scheme": "OAuth",
            "data": {
                "clientId": authorization["clientId"],
                "authorizationUrl": authorization["authorizationUrl"],
                "requireFipsCryptography": "False",
            },
        },
    )
    exchange(authorization["authorizationUrl"], authorization["clientId"])
    console.ok("Runner connection is good")

    console.section("Runner settings")
    work = prompt(command, "work", "Enter name of work folder:", "_work")
    settings: dict[str, Any] = {
        "agentId": agent["id"],
        "agentName": name,
        "poolId": pool["id"],
        "poolName": pool["name"],
    }
    if command.flag("ephemeral"):
        settings["ephemeral"] = True
    if command.flag("disableupdate"):
        settings["disableUpdate"] = True
    base = str(service["url"]).rstrip("/")
    settings |= {"serverUrl": base, "gitHubUrl": url, "workFolder": work}
    write_json(layout.runner, settings)
    console.ok("Settings Saved.")
    console.line()
    return SUCCESS


# --- remove ---------------------------------------------------------------------------------


def remove(command: Command, layout: Layout, console: Console) -> int:
    console.section("Runner removal")
    action = "Removing runner from the server"
    try:
        configured = layout.configured()
        has_credentials = layout.credentials.exists()
        if command.flag("local"):
            console.line("Skipping removing runner from the server (--local)")
        elif configured and has_credentials:
            settings = layout.settings()
            token = prompt(command, "token", "Enter runner remove token:")
            command.secrets.append(token)
            service = tenant(str(settings["gitHubUrl"]), token, "remove")
            base = str(service["url"]).rstrip("/")
            auth = f"Bearer {service['token']}"
            name = str(settings["agentName"])
            found = http("GET", f"{base}/agents?name={quote(name)}", authorization=auth)
            agents = (found or {}).get("value") or []
            if not agents:
                console.line(f"Does not exist. Skipping {action}")
            else:
                http("DELETE", f"{base}/agents/{settings['agentId']}", authorization=auth)
                console.ok("Runner removed successfully")
        else:
            console.line(
                "Cannot connect to server, because config files are missing. "
                "Skipping removing runner from the server."
            )
        action = "Removing .credentials"
        if has_credentials:
            layout.credentials.unlink(missing_ok=True)
            layout.rsaparams.unlink(missing_ok=True)
            console.ok("Removed .credentials")
        else:
            console.line(f"Does not exist. Skipping {action}")
        action = "Removing .runner"
        if configured:
            layout.runner.unlink(missing_ok=True)
            console.ok("Removed .runner")
        else:
            console.line(f"Does not exist. Skipping {action}")
    except (Failure, HttpError, OSError) as exc:
        console.error(f"Failed: {action}")
        raise Failure(str(exc)) from None
    console.line()
    return SUCCESS


# --- run ------------------------------------------------------------------------------------


def exchange(authorization_url: str, client_id: str) -> str:
    """The OAuth step: the agent's client id for an access token; Failure on invalid_client."""
    try:
        answer = http("POST", authorization_url, body={"client_id": client_id})
    except HttpError as exc:
        if exc.status == 401:
            raise Failure(
                "Failed to create a session. The runner registration has been deleted from the "
                "server, please re-configure."
            ) from None
        raise
    return str(answer["access_token"])


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class Job:
    """A job's script run like a step of Runner.Worker: its own process group, output kept."""

    def __init__(self, job_id: str, script: str, work: Path) -> None:
        self.id = job_id
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in result()
        work.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", script],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cancel(self) -> None:
        """SIGINT to the job's process group, SIGTERM after 7.5 s, SIGKILL 2.5 s later."""
        for signum, grace in ((signal.SIGINT, 7.5), (signal.SIGTERM, 2.5), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
                return

    def result(self, result: str) -> dict[str, Any]:
        self.output.seek(0)
        text = self.output.read(65536).decode("utf-8", "replace")
        self.output.close()
        return {"result": result, "exitCode": self.process.returncode, "output": text}


class Listener:
    """A session with the service, kept alive by polling until stopped or told to go."""

    def __init__(self, layout: Layout, console: Console, stop: threading.Event) -> None:
        self.layout = layout
        self.console = console
        self.stop = stop
        self.settings = layout.settings()
        self.credential = layout.credential_data()
        self.base = str(self.settings["serverUrl"]).rstrip("/")
        self.heartbeat = _seconds("RUNNER_EMULATOR_HEARTBEAT_SECONDS", 1.0)
        self.retry = _seconds("RUNNER_EMULATOR_RETRY_SECONDS", 5.0)
        # MessageListener.cs: a conflict is retried every 30 s; the n-th conflict (n >= 2)
        # ends the listener with 5 once n * 30 s reaches 4 minutes.
        self.session_retry = _seconds("RUNNER_EMULATOR_SESSION_RETRY_SECONDS", 30.0)
        self.conflict_limit = _seconds("RUNNER_EMULATOR_SESSION_CONFLICT_SECONDS", 240.0)
        self.session: str | None = None
        self.access: str | None = None
        self.job: Job | None = None

    def _auth(self) -> str:
        if self.access is None:
            self.access = exchange(
                str(self.credential["authorizationUrl"]), str(self.credential["clientId"])
            )
        return f"Bearer {self.access}"

    def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        reported = False
        while not self.stop.is_set():
            try:
                return call()
            except (OSError, ValueError) as exc:
                if not reported:
                    self.console.error(
                        f"{_now()}: Runner connect error: {what}: {exc}. "
                        "Retrying until reconnected."
                    )
                    reported = True
                self.stop.wait(self.retry)
        return None

    def _open(self) -> Any:
        return http(
            "POST",
            f"{self.base}/sessions",
            body={
                "agentId": self.settings["agentId"],
                "sessionName": socket.gethostname() or "RUNNER",
                "version": VERSION,
            },
            authorization=self._auth(),
        )

    def create_session(self) -> int | None:
        conflicts = 0
        while not self.stop.is_set():
            try:
                answer = self._retrying(self._open, "create session")
            except HttpError as exc:
                if exc.status == 409:
                    self.console.error("A session for this runner already exists.")
                    conflicts += 1
                    if conflicts > 1 and conflicts * self.session_retry >= self.conflict_limit:
                        self.console.error(
                            "Failed to create session. Stop retry on SessionConflictException "
                            f"after retried for {self.conflict_limit:g} seconds."
                        )
                        return SESSION_CONFLICT
                    self.stop.wait(self.session_retry)
                    continue
                if exc.status == 404:
                    self.console.error(
                        "The runner no longer exists on the server. Please reconfigure the runner."
                    )
                    return TERMINATED
                message = exc.body.get("message") if isinstance(exc.body, dict) else None
                self.console.error(f"Failed to create session. {message or f'HTTP {exc.status}'}")
                return TERMINATED
            if answer is None:
                return None
            self.session = str(answer["sessionId"])
            return None
        return None

    def delete_session(self) -> None:
        if self.session is None or self.access is None:
            return
        with contextlib.suppress(HttpError, OSError):
            http(
                "DELETE",
                f"{self.base}/sessions/{self.session}",
                authorization=f"Bearer {self.access}",
            )
        self.session = None

    def _report(self, job: Job, result: str) -> None:
        body = job.result(result)
        self.console.line(f"{_now()}: Job {job.id} completed with result: {result}")
        with contextlib.suppress(HttpError, OSError):
            http("POST", f"{self.base}/jobs/{job.id}", body=body, authorization=self._auth())

    def _job_step(self, answer: Any) -> None:
        """Start an offered job when idle; report the running one once it has ended."""
        job = (answer or {}).get("job")
        if isinstance(job, dict) and self.job is None:
            self.console.line(f"{_now()}: Running job: {job['id']}")
            work = self.layout.root / str(self.settings.get("workFolder", "_work"))
            self.job = Job(str(job["id"]), str(job["script"]), work)
        if self.job is not None and self.job.process.poll() is not None:
            self._report(self.job, "succeeded" if self.job.process.returncode == 0 else "failed")
            self.job = None

    def _poll(self) -> Any:
        return http(
            "POST",
            f"{self.base}/sessions/{self.session}/messages",
            body={},
            authorization=self._auth(),
        )

    def run(self) -> int:
        ended = self.create_session()
        if ended is not None:
            return ended
        if self.stop.is_set():
            return SUCCESS
        self.console.ok("Connected to GitHub")
        self.console.line()
        self.console.line(f"Current runner version: '{VERSION}'")
        self.console.line(f"{_now()}: Listening for Jobs")
        try:
            return self._listen()
        finally:
            if self.job is not None:  # the shutdown cancels the running job first
                self.console.line(f"{_now()}: Cancelling job {self.job.id}: runner shutdown")
                self.job.cancel()
                self._report(self.job, "cancelled")
                self.job = None
            self.delete_session()

    def _listen(self) -> int:
        while not self.stop.is_set():
            try:
                answer = self._retrying(self._poll, "get next message")
            except HttpError as exc:
                if exc.status == 404 and _type_key(exc) == "TaskAgentSessionExpiredException":
                    ended = self.create_session()
                    if ended is not None:
                        return ended
                    continue
                if exc.status in (401, 404):
                    self.console.error(
                        "The runner no longer exists on the server. Please reconfigure the runner."
                    )
                    return TERMINATED
                raise
            self._job_step(answer)
            message = (answer or {}).get("message")
            if message == "restart" and self.job is None:
                self.console.line("Runner configuration refreshed, restarting.")
                return RETRYABLE
            if message == "update" and self.job is None:
                if self.settings.get("disableUpdate"):
                    self.console.line("Runner update skipped: --disableupdate is set.")
                else:
                    self.console.line("Runner update in progress, do not shutdown runner.")
                    return UPDATING
            self.stop.wait(self.heartbeat)
        self.console.line("Exiting...")
        return SUCCESS


def run(command: Command, layout: Layout, console: Console) -> int:
    del command
    if not layout.configured():
        raise Failure("Runner is not configured.")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        del frame
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = Listener(layout, console, stop).run()
    # Ctrl-C (SIGINT) ends RunAsync normally (0); after SIGTERM the .NET runtime's exit
    # status is 143 unless the program sets another (dotnet/coreclr#21300).
    return SIGTERM_EXIT if code == SUCCESS and signal.SIGTERM in received else code


# --- entry ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, environ: MutableMapping[str, str] | None = None) -> int:
    command = parse(
        sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
    )
    console = Console(command)
    root = Path(os.environ.get("RUNNER_EMULATOR_ROOT") or Path(__file__).resolve().parent.parent)
    layout = Layout(root)
    if command.unknown:  # Program.cs: a warning, then the command runs all the same
        unknown = ", ".join(command.unknown)
        where = (
            f"Unrecognized command-line input arguments for command {command.commands[0]}"
            if command.commands
            else "This command does not recognize the command-line input arguments"
        )
        console.error(
            f"{where}: '{unknown}'. For usage refer to: .\\config.cmd --help or ./config.sh --help"
        )
    if command.flag("version"):
        console.line(VERSION)
        return SUCCESS
    if command.flag("commit"):
        console.line(COMMIT)
        return SUCCESS
    if command.flag("help"):
        console.line(__doc__ or "")
        return SUCCESS
    if os.geteuid() == 0 and not os.environ.get("RUNNER_ALLOW_RUNASROOT"):
        console.error("Must not run with sudo")
        return TERMINATED
    verb = command.commands[0] if command.commands else "run"
    try:
        if verb == "configure":
            return configure(command, layout, console)
        if verb == "remove":
            return remove(command, layout, console)
        if verb == "warmup":
            return SUCCESS
        return run(command, layout, console)
    except Failure as exc:
        console.error(str(exc))
        return exc.code
    except HttpError as exc:
        console.error(f"Unexpected answer from the service: HTTP {exc.status}")
        return TERMINATED
    except OSError as exc:
        console.error(f"{type(exc).__name__}: {exc}")
        return TERMINATED


if __name__ == "__main__":
    sys.exit(main())
