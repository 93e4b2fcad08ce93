"""Bearer tokens: random, shown once, kept only as SHA-256 hashes, scoped, revocable."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from helper.contract.identifiers import HOST_RE, canonical_repository
from helper.contract.safefs import replace_file

WRITE_ACTION = "runner_lane_maintainer_audit.write"
READ_ACTION = "runner_lane_maintainer_audit.read"
PREFIX = "lpe"


class TokenEntry(BaseModel):
    """One minted token as stored: its public id, scope and the hash of its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_id: str
    sha256: str
    kind: Literal["write", "read"]
    hosts: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    created_at: datetime
    revoked_at: datetime | None = None
    note: str = ""

    def allows(self, action: str, host: str | None = None, repository: str | None = None) -> bool:
        """Write: the action and both the record's host and repository in scope. Read: read."""
        if self.revoked_at is not None:
            return False
        if action == READ_ACTION:
            return self.kind == "read"
        return (
            action == WRITE_ACTION
            and self.kind == "write"
            and host in self.hosts
            and repository in self.repositories
        )

    def public(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"sha256"})


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """tokens.json (0600) next to the store; rewritten atomically under an exclusive lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cache: tuple[tuple[int, int, int], TokenFile] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[TokenFile]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._load()
        finally:
            os.close(fd)

    def _load(self) -> TokenFile:
        """The file as it is now; parsed again only when it was replaced."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return TokenFile()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, TokenFile.model_validate_json(self.path.read_bytes()))
        return self._cache[1]

    def _save(self, data: TokenFile) -> None:
        replace_file(self.path, data.model_dump_json(indent=1).encode(), mode=0o600)

    def create(
        self,
        kind: Literal["write", "read"],
        hosts: tuple[str, ...] = (),
        repositories: tuple[str, ...] = (),
        note: str = "",
    ) -> tuple[str, TokenEntry]:
        """Mint a token; the secret is returned here once and never stored."""
        if kind == "write" and not (hosts and repositories):
            raise ValueError("a write token needs at least one host and one repository")
        for host in hosts:
            if not HOST_RE.fullmatch(host):
                raise ValueError(f"host {host!r} is not an RFC 1123 host name")
        repositories = tuple(canonical_repository(r) for r in repositories)
        token_id = secrets.token_hex(6)
        token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        entry = TokenEntry(
            token_id=token_id,
            sha256=digest(token),
            kind=kind,
            hosts=tuple(sorted(set(hosts))),
            repositories=tuple(sorted(set(repositories))),
            created_at=datetime.now(UTC),
            note=note,
        )
        with self._locked() as current:
            data = current.model_copy(deep=True)
            data.tokens.append(entry)
            self._save(data)
        return token, entry

    def revoke(self, token_id: str) -> bool:
        with self._locked() as current:
            data = current.model_copy(deep=True)
            for i, entry in enumerate(data.tokens):
                if entry.token_id == token_id and entry.revoked_at is None:
                    data.tokens[i] = entry.model_copy(update={"revoked_at": datetime.now(UTC)})
                    self._save(data)
                    return True
        return False

    def list(self) -> list[TokenEntry]:
        return list(self._load().tokens)

    def authenticate(self, token: str) -> TokenEntry | None:
        """The live entry whose hash matches `token`, compared in constant time."""
        wanted = digest(token)
        found = None
        for entry in self._load().tokens:
            if hmac.compare_digest(entry.sha256, wanted):
                found = entry
        return found if found is not None and found.revoked_at is None else None
