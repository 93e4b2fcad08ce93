"""The GitHub emulator's world: repositories, organizations and their runner groups, runners,
labels, tokens, sessions, rate limits. A runner's `repository` is its scope: `owner/name`, or
an organization's login (which never contains '/').

Secrets are kept only as SHA-256 digests, so no dump, log or state file can leak one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from helper.contract.safefs import replace_file
from tests.emulators.clock import EmulatorClock

TOKEN_LIFETIME = 3600.0  # registration, remove and installation tokens: one hour
RATE_WINDOW = 3600.0
DEFAULT_RATE_LIMIT = 5000
DEFAULT_LABELS = ("self-hosted", "Linux", "X64")
SESSION_TIMEOUT = 10.0  # a session without a heartbeat this long is gone (runner offline)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class Label:
    id: int
    name: str
    type: str  # read-only | custom

    def api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type}


@dataclass
class Session:
    id: str
    name: str
    last_heartbeat: float


@dataclass
class Runner:
    id: int
    repository: str
    name: str
    labels: list[Label]
    os: str = "linux"
    busy: bool = False
    ephemeral: bool = False
    disable_update: bool = False
    version: str | None = None  # null until the runner first connects
    runner_group_id: int = 1
    client_id: str | None = None  # None: created by a test, not by config.sh
    forced_status: str | None = None  # a test pins online/offline
    session: Session | None = None
    session_ended_at: float | None = None
    pending_message: str | None = None


@dataclass
class RunnerGroup:
    """An organization's runner group; every organization has `Default` (id 1), as on GitHub."""

    id: int
    organization: str
    name: str
    default: bool = False

    def api(self, base: str) -> dict[str, Any]:
        group = f"{base}/api/v3/orgs/{self.organization}/actions/runner-groups/{self.id}"
        return {
            "id": self.id,
            "name": self.name,
            "visibility": "all",
            "default": self.default,
            "runners_url": f"{group}/runners",
            "inherited": False,
            "allows_public_repositories": False,
            "restricted_to_workflows": False,
            "selected_workflows": [],
            "workflow_restrictions_read_only": False,
        }


DEFAULT_GROUP_ID = 1


@dataclass
class Job:
    """A job queued for one runner; its listener runs `script` and reports the result."""

    id: str
    runner_id: int
    script: str
    status: str = "queued"  # queued | in_progress | succeeded | failed | cancelled
    exit_code: int | None = None
    output: str = ""


@dataclass
class IssuedToken:
    kind: str  # registration | remove | tenant-register | tenant-remove | oauth | installation
    repository: str | None
    expires_at: float
    runner_id: int | None = None
    installation_id: int | None = None


@dataclass
class Pat:
    repositories: list[str] | None  # None: every repository
    permission: str = "admin"  # admin | read


@dataclass
class App:
    app_id: str
    public_key_pem: str
    installation_id: int
    repositories: list[str] | None


@dataclass
class RateBucket:
    limit: int
    used: int
    reset: float


@dataclass
class World:
    repositories: list[str] = field(default_factory=list)
    runners: dict[int, Runner] = field(default_factory=dict)
    label_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)  # digest -> token
    pats: dict[str, Pat] = field(default_factory=dict)  # digest -> PAT
    apps: list[App] = field(default_factory=list)
    buckets: dict[str, RateBucket] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    organizations: list[str] = field(default_factory=list)
    runner_groups: list[RunnerGroup] = field(default_factory=list)
    next_group_id: int = DEFAULT_GROUP_ID + 1
    next_runner_id: int = 1
    next_label_id: int = 1
    clock_offset: float = 0.0


class StateError(Exception):
    """A GitHub-side refusal: `status` and `message` become the HTTP answer."""

    def __init__(self, status: int, message: str, type_key: str = "StateError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_key = type_key


@dataclass
class Settings:
    session_timeout: float = SESSION_TIMEOUT
    offline_lag: float = 0.0  # a runner that lost its session stays "online" this long
    rate_limit: int = DEFAULT_RATE_LIMIT
    token_prefix: str = ""  # tests mark minted tokens (canary) with a prefix
    minimum_runner_version: str = ""  # "": any; else sessions and registrations below refused


def version_tuple(version: str) -> tuple[int, ...]:
    """`2.329.0` -> (2, 329, 0); anything unparsable sorts lowest."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


class State:
    """All of the emulator's mutable state behind one lock; `changed` wakes waiters."""

    def __init__(
        self,
        clock: EmulatorClock,
        *,
        settings: Settings | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings or Settings()
        self.state_file = state_file
        self.world = World()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._issued_values: list[str] = []  # test-only: never dumped, never persisted
        if state_file is not None and state_file.exists():
            self._load(state_file)

    # --- persistence ----------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        w = World(
            repositories=list(raw["repositories"]),
            label_ids=dict(raw["label_ids"]),
            pats={k: Pat(**v) for k, v in raw["pats"].items()},
            apps=[App(**a) for a in raw["apps"]],
            buckets={k: RateBucket(**v) for k, v in raw["buckets"].items()},
            tokens={k: IssuedToken(**v) for k, v in raw["tokens"].items()},
            jobs={k: Job(**v) for k, v in raw.get("jobs", {}).items()},
            organizations=list(raw.get("organizations", [])),
            runner_groups=[RunnerGroup(**g) for g in raw.get("runner_groups", [])],
            next_group_id=raw.get("next_group_id", DEFAULT_GROUP_ID + 1),
            next_runner_id=raw["next_runner_id"],
            next_label_id=raw["next_label_id"],
            clock_offset=raw.get("clock_offset", 0.0),
        )
        for raw_runner in raw["runners"]:
            item = dict(raw_runner)
            item["labels"] = [Label(**label) for label in item["labels"]]
            item["session"] = None  # sessions do not survive a restart: runners reconnect
            runner = Runner(**item)
            w.runners[runner.id] = runner
        self.world = w
        self.clock.set_offset(w.clock_offset)

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            self.world.clock_offset = self.clock.offset()
            document = asdict(self.world)
            document["runners"] = list(document["runners"].values())
        data = json.dumps(document, indent=1, sort_keys=True).encode()
        path = self.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data, mode=0o600)

    @contextlib.contextmanager
    def mutate(self) -> Iterator[World]:
        with self.lock:
            yield self.world
            self.changed.notify_all()
        self.save()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until `predicate()` holds (checked on every change) or `timeout` passes."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    # --- configuration --------------------------------------------------------------------

    def add_repository(self, repository: str) -> None:
        with self.mutate() as w:
            if repository.lower() not in (r.lower() for r in w.repositories):
                w.repositories.append(repository)

    def repository(self, owner: str, name: str) -> str | None:
        wanted = f"{owner}/{name}".lower()
        with self.lock:
            return next((r for r in self.world.repositories if r.lower() == wanted), None)

    def add_organization(self, organization: str) -> None:
        """An organization with its `Default` runner group."""
        with self.mutate() as w:
            if organization.lower() not in (o.lower() for o in w.organizations):
                w.organizations.append(organization)
                w.runner_groups.append(
                    RunnerGroup(DEFAULT_GROUP_ID, organization, "Default", default=True)
                )

    def organization(self, login: str) -> str | None:
        with self.lock:
            return next((o for o in self.world.organizations if o.lower() == login.lower()), None)

    def scope(self, owner: str, name: str | None) -> str | None:
        """A repository (`owner`, `name`) or, with `name` None, an organization."""
        return self.organization(owner) if name is None else self.repository(owner, name)

    def add_runner_group(self, organization: str, name: str) -> RunnerGroup:
        with self.mutate() as w:
            group = RunnerGroup(w.next_group_id, organization, name)
            w.next_group_id += 1
            w.runner_groups.append(group)
            return group

    def runner_groups_of(self, scope: str) -> list[RunnerGroup]:
        """An organization's groups; a repository has only its `Default` pool."""
        with self.lock:
            if "/" in scope:
                return [RunnerGroup(DEFAULT_GROUP_ID, scope, "Default", default=True)]
            return [g for g in self.world.runner_groups if g.organization.lower() == scope.lower()]

    def add_pat(
        self, token: str, repositories: list[str] | None = None, permission: str = "admin"
    ) -> None:
        with self.mutate() as w:
            w.pats[digest(token)] = Pat(repositories, permission)

    def add_app(
        self,
        app_id: str,
        public_key_pem: str,
        installation_id: int,
        repositories: list[str] | None = None,
    ) -> None:
        with self.mutate() as w:
            w.apps.append(App(app_id, public_key_pem, installation_id, repositories))

    # --- tokens ---------------------------------------------------------------------------

    def mint(
        self,
        kind: str,
        repository: str | None,
        *,
        lifetime: float = TOKEN_LIFETIME,
        runner_id: int | None = None,
        installation_id: int | None = None,
    ) -> tuple[str, float]:
        prefix = self.settings.token_prefix
        if kind == "installation":
            value = f"ghs_{prefix}{_random(string.ascii_letters + string.digits, 36)}"
        elif kind in ("registration", "remove"):
            value = prefix + _random(string.ascii_uppercase + string.digits, 29)
        else:
            value = prefix + secrets.token_urlsafe(32)
        expires = self.clock.time() + lifetime
        with self.mutate() as w:
            w.tokens[digest(value)] = IssuedToken(
                kind, repository, expires, runner_id=runner_id, installation_id=installation_id
            )
            self._issued_values.append(value)
            now = self.clock.time()
            for key in [k for k, t in w.tokens.items() if t.expires_at < now - TOKEN_LIFETIME]:
                del w.tokens[key]
        return value, expires

    def token(self, value: str, kinds: tuple[str, ...]) -> IssuedToken | None:
        """The unexpired token of one of `kinds` with this value, else None."""
        with self.lock:
            found = self.world.tokens.get(digest(value))
            if found is None or found.kind not in kinds or found.expires_at <= self.clock.time():
                return None
            return found

    def issued_values(self) -> list[str]:
        """Test-only: every secret this emulator minted (for the canary search)."""
        with self.lock:
            return list(self._issued_values)

    # --- rate limits ----------------------------------------------------------------------

    def bucket(self, identity: str) -> RateBucket:
        with self.lock:
            now = self.clock.time()
            bucket = self.world.buckets.get(identity)
            if bucket is None or now >= bucket.reset:
                bucket = RateBucket(self.settings.rate_limit, 0, now + RATE_WINDOW)
                self.world.buckets[identity] = bucket
            return bucket

    def charge(self, identity: str) -> RateBucket:
        with self.mutate():
            bucket = self.bucket(identity)
            bucket.used += 1
            return bucket

    def exhaust(self, identity: str, reset_in: float) -> None:
        with self.mutate():
            bucket = self.bucket(identity)
            bucket.used = bucket.limit
            bucket.reset = self.clock.time() + reset_in

    # --- labels and runners ---------------------------------------------------------------

    def _label(self, w: World, name: str, kind: str) -> Label:
        key = name.lower()
        if key not in w.label_ids:
            w.label_ids[key] = w.next_label_id
            w.next_label_id += 1
        return Label(w.label_ids[key], name, kind)

    def build_labels(self, w: World, custom: list[str], default_labels: bool = True) -> list[Label]:
        labels: list[Label] = []
        seen: set[str] = set()
        for name in DEFAULT_LABELS if default_labels else ():
            labels.append(self._label(w, name, "read-only"))
            seen.add(name.lower())
        for name in custom:
            if name.lower() not in seen:
                labels.append(self._label(w, name, "custom"))
                seen.add(name.lower())
        return labels

    def add_runner(
        self,
        repository: str,
        name: str,
        *,
        labels: list[str] | None = None,
        default_labels: bool = True,
        busy: bool = False,
        status: str | None = None,
        ephemeral: bool = False,
        version: str | None = None,
        client_id: str | None = None,
        disable_update: bool = False,
        runner_group_id: int = DEFAULT_GROUP_ID,
    ) -> Runner:
        with self.mutate() as w:
            runner = Runner(
                id=w.next_runner_id,
                repository=repository,
                name=name,
                labels=self.build_labels(w, list(labels or []), default_labels),
                busy=busy,
                ephemeral=ephemeral,
                version=version,
                client_id=client_id,
                forced_status=status,
                disable_update=disable_update,
                runner_group_id=runner_group_id,
            )
            w.next_runner_id += 1
            w.runners[runner.id] = runner
            return runner

    def runners_of(self, repository: str) -> list[Runner]:
        with self.lock:
            return sorted(
                (
                    r
                    for r in self.world.runners.values()
                    if r.repository.lower() == repository.lower()
                ),
                key=lambda r: r.id,
            )

    def runner(self, repository: str | None, runner_id: int) -> Runner | None:
        with self.lock:
            found = self.world.runners.get(runner_id)
            if found is None or (
                repository is not None and found.repository.lower() != repository.lower()
            ):
                return None
            return found

    def runner_by_client(self, client_id: str) -> Runner | None:
        with self.lock:
            return next((r for r in self.world.runners.values() if r.client_id == client_id), None)

    def delete_runner(self, runner_id: int, *, force: bool = False) -> None:
        with self.mutate() as w:
            runner = w.runners.get(runner_id)
            if runner is None:
                raise StateError(404, "Not Found")
            if runner.busy and not force:
                raise StateError(
                    422, f'Bad request - Runner "{runner.name}" is still running a job"'
                )
            del w.runners[runner_id]
            for key in [k for k, t in w.tokens.items() if t.runner_id == runner_id]:
                del w.tokens[key]

    def status(self, runner: Runner) -> str:
        with self.lock:
            if runner.forced_status is not None:
                return runner.forced_status
            now = self.clock.time()
            timeout = self.settings.session_timeout
            if runner.session is not None:
                if now - runner.session.last_heartbeat <= timeout:
                    return "online"
                ended: float | None = runner.session.last_heartbeat + timeout
            else:
                ended = runner.session_ended_at
            if ended is not None and now - ended < self.settings.offline_lag:
                return "online"
            return "offline"

    def api_runner(self, runner: Runner) -> dict[str, Any]:
        return {
            "id": runner.id,
            "name": runner.name,
            "os": runner.os,
            "status": self.status(runner),
            "busy": runner.busy,
            "ephemeral": runner.ephemeral,
            "runner_group_id": runner.runner_group_id,
            "version": runner.version,
            "labels": [label.api() for label in runner.labels],
        }

    def set_custom_labels(self, runner: Runner, names: list[str]) -> list[Label]:
        with self.mutate() as w:
            read_only = [label for label in runner.labels if label.type == "read-only"]
            seen = {label.name.lower() for label in read_only}
            custom: list[Label] = []
            for name in names:
                if name.lower() not in seen:
                    custom.append(self._label(w, name, "custom"))
                    seen.add(name.lower())
            runner.labels = read_only + custom
            return list(runner.labels)

    def add_custom_labels(self, runner: Runner, names: list[str]) -> list[Label]:
        current = [label.name for label in runner.labels if label.type == "custom"]
        return self.set_custom_labels(runner, current + names)

    def remove_custom_label(self, runner: Runner, name: str) -> list[Label]:
        with self.lock:
            present = [label for label in runner.labels if label.type == "custom"]
            if not any(label.name.lower() == name.lower() for label in present):
                raise StateError(404, "Not Found")
        keep = [label.name for label in present if label.name.lower() != name.lower()]
        return self.set_custom_labels(runner, keep)

    # --- sessions (the runner emulator's side) --------------------------------------------

    def check_version(self, version: str) -> None:
        """GitHub refuses runners below its minimum version (sessions and registrations)."""
        minimum = self.settings.minimum_runner_version
        if minimum and version_tuple(version) < version_tuple(minimum):
            raise StateError(
                403,
                f"Runner version v{version} is deprecated and cannot receive messages. "
                f"The minimum supported version is v{minimum}.",
                "TaskAgentVersionNotSupportedException",
            )

    def open_session(self, runner: Runner, name: str, version: str) -> Session:
        self.check_version(version)
        with self.mutate():
            session = runner.session
            if (
                session is not None
                and self.clock.time() - session.last_heartbeat <= self.settings.session_timeout
            ):
                raise StateError(409, "A session for this runner already exists.")
            runner.session = Session(secrets.token_hex(16), name, self.clock.time())
            runner.session_ended_at = None
            runner.version = version
            return runner.session

    def heartbeat(self, runner: Runner, session_id: str) -> str | None:
        with self.mutate():
            session = runner.session
            timeout = self.settings.session_timeout
            if session is None or session.id != session_id:
                raise StateError(404, "TaskAgentSessionExpiredException")
            if self.clock.time() - session.last_heartbeat > timeout:
                runner.session = None
                runner.session_ended_at = session.last_heartbeat + timeout
                raise StateError(404, "TaskAgentSessionExpiredException")
            session.last_heartbeat = self.clock.time()
            message, runner.pending_message = runner.pending_message, None
            return message

    # --- jobs -------------------------------------------------------------------------------

    def queue_job(self, runner: Runner, script: str) -> Job:
        with self.mutate() as w:
            job = Job(secrets.token_hex(8), runner.id, script)
            w.jobs[job.id] = job
            return job

    def assign_job(self, runner: Runner) -> Job | None:
        """The next queued job for an idle runner; the runner is busy from now on."""
        with self.mutate() as w:
            if runner.busy:
                return None
            job = next(
                (j for j in w.jobs.values() if j.runner_id == runner.id and j.status == "queued"),
                None,
            )
            if job is not None:
                job.status = "in_progress"
                runner.busy = True
            return job

    def finish_job(self, runner: Runner, job_id: str, result: str, code: Any, output: str) -> Job:
        with self.mutate() as w:
            job = w.jobs.get(job_id)
            if job is None or job.runner_id != runner.id or job.status != "in_progress":
                raise StateError(404, "Not Found", "JobNotFoundException")
            if result not in ("succeeded", "failed", "cancelled"):
                raise StateError(400, f"unknown result {result!r}")
            job.status = result
            job.exit_code = code if isinstance(code, int) else None
            job.output = output[:65536]
            runner.busy = False
            return job

    def close_session(self, runner: Runner, session_id: str) -> None:
        with self.mutate():
            if runner.session is not None and runner.session.id == session_id:
                runner.session = None
                runner.session_ended_at = self.clock.time()

    # --- dump -----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything a test or an operator may look at; secrets only as digest prefixes."""
        with self.lock:
            now = self.clock.time()
            return {
                "now": now,
                "settings": asdict(self.settings),
                "repositories": list(self.world.repositories),
                "organizations": list(self.world.organizations),
                "runner_groups": [asdict(g) for g in self.world.runner_groups],
                "runners": [
                    {
                        **self.api_runner(r),
                        "repository": r.repository,
                        "managed_by_config_sh": r.client_id is not None,
                        "session": None
                        if r.session is None
                        else {"name": r.session.name, "last_heartbeat": r.session.last_heartbeat},
                        "disable_update": r.disable_update,
                    }
                    for r in sorted(self.world.runners.values(), key=lambda r: r.id)
                ],
                "tokens": [
                    {
                        "digest": key[:12],
                        "kind": t.kind,
                        "repository": t.repository,
                        "expires_at": t.expires_at,
                        "expired": t.expires_at <= now,
                    }
                    for key, t in self.world.tokens.items()
                ],
                "jobs": [asdict(job) for job in self.world.jobs.values()],
                "rate_limits": {
                    key[:24]: asdict(bucket) for key, bucket in self.world.buckets.items()
                },
            }
