"""ETag cache for GitHub GETs: in memory, optionally on disk, so a steady pass costs only 304s."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helper.contract.safefs import replace_file

CACHE_FILE = "github-etags.json"
CACHE_SCHEMA = 2  # 2: every entry carries the sha256 of its body
MAX_ENTRIES = 4096


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A 200 answer kept for revalidation: its validator, body, pagination link and the
    sha256 of the body as GitHub sent it (checked on every use)."""

    etag: str
    body: str
    link: str | None = None
    sha256: str = ""

    @classmethod
    def of(cls, etag: str, body: str, link: str | None) -> CachedResponse:
        return cls(etag, body, link, body_digest(body))

    def intact(self) -> bool:
        return self.sha256 == body_digest(self.body)


class EtagCache:
    """Keyed by the request URL (query included). Responses that carry secrets (tokens) are
    never offered to it; what it stores is inventory that any reader of the API could see.

    It cannot lie (docs/github.md, "ETag cache"): the adapter offers it a body only after the
    body parsed as GitHub's schema, every entry carries the body's sha256 and an entry whose
    body no longer matches it is dropped on load and on use, so a 304 is answered only with
    the exact bytes GitHub last sent for that URL. On disk: one JSON file, written atomically
    (temp file, fsync, rename), mode 0600."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._entries: dict[str, CachedResponse] = {}
        self._loaded = directory is None

    @property
    def path(self) -> Path | None:
        return None if self._directory is None else self._directory / CACHE_FILE

    def _load(self) -> None:
        self._loaded = True
        path = self.path
        if path is None:
            return
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # a missing or damaged cache only costs one cold pass
        if not isinstance(raw, dict) or raw.get("schema") != CACHE_SCHEMA:
            return
        entries = raw.get("entries")
        if not isinstance(entries, dict):
            return
        for key, value in entries.items():
            if not isinstance(value, dict):
                continue
            etag, body, link, digest = (value.get(k) for k in ("etag", "body", "link", "sha256"))
            if not (isinstance(etag, str) and isinstance(body, str) and isinstance(digest, str)):
                continue
            entry = CachedResponse(etag, body, link if isinstance(link, str) else None, digest)
            if entry.intact():
                self._entries[key] = entry

    def get(self, key: str) -> CachedResponse | None:
        """The entry for `key`, or None; an entry whose body fails its digest is dropped."""
        if not self._loaded:
            self._load()
        entry = self._entries.get(key)
        if entry is not None and not entry.intact():
            self.drop(key)
            return None
        return entry

    def put(self, key: str, entry: CachedResponse) -> None:
        if not self._loaded:
            self._load()
        if self._entries.get(key) == entry:
            return
        self._entries[key] = entry
        while len(self._entries) > MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._save()

    def drop(self, key: str) -> None:
        if not self._loaded:
            self._load()
        if self._entries.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        path = self.path
        if path is None:
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = {
            "schema": CACHE_SCHEMA,
            "entries": {
                key: {"etag": e.etag, "body": e.body, "link": e.link, "sha256": e.sha256}
                for key, e in self._entries.items()
            },
        }
        data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        replace_file(path, data, mode=0o600)
