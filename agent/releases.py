"""Runner releases as the agent knows them: the newest GitHub offers, when it was first seen,
and the version of each runner archive the agent cached (docs/operations.md, "Runner versions")."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from agent.contracts import RunnerVersions
from agent.github.errors import GitHubError
from agent.github.payloads import select_download
from agent.logs import get_logger
from agent.ports import Clock, GitHubPort
from agent.versions import VERSION_RE, version_of

log = get_logger(__name__)

SIGHTINGS = "runner-releases.json"
SHA_RE = re.compile(r"[0-9a-f]{64}")
ASK_AGAIN = timedelta(minutes=1)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


@dataclass
class ReleaseWatch:
    """The downloads API, asked at most every `check_every` per repository (kept on disk in
    the agent's cache), or at once when the caller says the lane looks refused."""

    github: GitHubPort
    cache_dir: Path
    clock: Clock
    architecture: str
    check_every: timedelta = timedelta(hours=1)
    _asked: dict[str, datetime] = field(default_factory=dict)  # in this process

    def archive_version(self, sha256: str | None) -> str | None:
        """The version the agent recorded for an archive it cached (None if unknown)."""
        if sha256 is None or not SHA_RE.fullmatch(sha256):
            return None
        path = self.cache_dir / "runners" / f"{sha256}.version"
        try:
            text = path.read_text(encoding="ascii")[:32].strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if VERSION_RE.fullmatch(text) else None

    def versions(
        self,
        repository: str,
        installed_sha256: str | None,
        github_version: str | None,
        *,
        fresh: bool = False,
    ) -> RunnerVersions:
        """What the planner needs to judge a lane's runner version."""
        installed = self.archive_version(installed_sha256)
        source: Literal["archive", "github"] | None = "archive" if installed else None
        if installed is None and github_version and VERSION_RE.fullmatch(github_version):
            installed, source = github_version, "github"
        latest, seen = self._latest(repository, fresh)
        return RunnerVersions(
            installed=installed, installed_source=source, latest=latest, latest_seen_at=seen
        )

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            raw = json.loads((self.cache_dir / SIGHTINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"checked": {}, "latest": {}, "first_seen": {}}
        ok = isinstance(raw, dict) and all(
            isinstance(raw.get(k), dict) for k in ("checked", "latest", "first_seen")
        )
        return raw if ok else {"checked": {}, "latest": {}, "first_seen": {}}

    def _latest(self, repository: str, fresh: bool) -> tuple[str | None, datetime | None]:
        state = self._load()
        now = self.clock()
        checked = state["checked"].get(repository)
        due = fresh or checked is None or now - _parse(checked) >= self.check_every
        asked = self._asked.get(repository)
        if due and (asked is None or now - asked >= ASK_AGAIN):
            self._asked[repository] = now  # once per pass and repository, even if it fails
            try:
                download = select_download(
                    self.github.runner_downloads(repository), "linux", self.architecture
                )
            except GitHubError as exc:
                log.warning("releases.check_failed", repository=repository, error=exc.code)
            else:
                version = version_of(download.filename)
                if version is not None:
                    state["latest"][repository] = version
                    state["checked"][repository] = now.isoformat()
                    state["first_seen"].setdefault(version, now.isoformat())
                    self._save(state)
        latest = state["latest"].get(repository)
        seen = state["first_seen"].get(latest) if latest else None
        return latest, _parse(seen) if seen else None

    def _save(self, state: dict[str, dict[str, str]]) -> None:
        with contextlib.suppress(OSError):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.cache_dir / SIGHTINGS, json.dumps(state, sort_keys=True).encode())


def _parse(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)
