"""/etc/launchplane/evidence.toml: the store, where it lives, and how the service listens."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evidence.fs_store import FilesystemEvidenceStore
from evidence.pg_store import PostgresEvidenceStore
from evidence.store import EvidenceStore

DEFAULT_CONFIG = "/etc/launchplane/evidence.toml"
DSN_CREDENTIAL = "postgresql-dsn"


class Settings(BaseModel):
    """Every key is optional; the defaults are the embedded filesystem store on loopback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Literal["filesystem", "postgresql"] = "filesystem"
    state_directory: Path = Path("/var/lib/launchplane-evidence")
    tokens_file: Path | None = None
    postgresql_dsn_file: Path | None = None  # default: $CREDENTIALS_DIRECTORY/postgresql-dsn
    pool_size: int = Field(default=8, ge=1, le=128)
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8471, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)  # uvicorn worker processes
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    stale_after_seconds: int = Field(default=3600, ge=60)

    @property
    def tokens_path(self) -> Path:
        return self.tokens_file or self.state_directory / "tokens.json"

    def dsn(self) -> str:
        """The DSN from its credential file (never argv, the environment or this file)."""
        path = self.postgresql_dsn_file
        if path is None:
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if not creds:
                raise ValueError("store = postgresql needs postgresql_dsn_file or a credential")
            path = Path(creds) / DSN_CREDENTIAL
        dsn = path.read_text(encoding="utf-8").strip()
        if not dsn:
            # The package creates the credential file empty: fail, never connect to a default.
            raise ValueError(f"store = postgresql but the DSN credential {path} is empty")
        return dsn

    def open_store(self) -> EvidenceStore:
        if self.store == "postgresql":
            return PostgresEvidenceStore(self.dsn(), max_size=self.pool_size)
        return FilesystemEvidenceStore(self.state_directory / "store")


def load(path: str | Path | None) -> Settings:
    """The settings file, or the defaults when the default file does not exist."""
    target = Path(path or DEFAULT_CONFIG)
    if path is None and not target.exists():
        return Settings()
    with target.open("rb") as fh:
        return Settings.model_validate(tomllib.load(fh))
