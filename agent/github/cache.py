"""ETag cache for GitHub GETs: in memory, optionally on disk, so a steady pass costs only 304s."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helper.contract.safefs import replace_file

CACHE_FILE = "github-etags.json"
CACHE_SCHEMA = 1
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class CachedResponse:
    """A 200 answer kept for revalidation: its validator, body and pagination link."""

    etag: str
    body: str
    link: str | None = None


class EtagCache:
    """Keyed by the request URL (query included). Responses that carry secrets (tokens) are
    never offered to it; what it stores is inventory that any reader of the API could see.
    On disk: one JSON file, written atomically (temp file, fsync, rename), mode 0600."""

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
            if (
                isinstance(value, dict)
                and isinstance(value.get("etag"), str)
                and isinstance(value.get("body"), str)
            ):
                link = value.get("link")
                self._entries[key] = CachedResponse(
                    value["etag"], value["body"], link if isinstance(link, str) else None
                )

    def get(self, key: str) -> CachedResponse | None:
        if not self._loaded:
            self._load()
        return self._entries.get(key)

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
                key: {"etag": e.etag, "body": e.body, "link": e.link}
                for key, e in self._entries.items()
            },
        }
        data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        replace_file(path, data, mode=0o600)
