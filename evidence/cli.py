"""launchplane-evidence: serve, migrate, and mint / list / revoke tokens."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette

from evidence import readiness
from evidence.app import create_app
from evidence.pg_store import migrate
from evidence.settings import Settings, load
from evidence.store import EvidenceStore
from evidence.tokens import TokenRegistry


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launchplane-evidence", description=__doc__)
    p.add_argument("--config", help="settings file (default /etc/launchplane/evidence.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service (uvicorn) on the configured store")
    sub.add_parser("migrate", help="bring the PostgreSQL schema to the newest version")
    tokens = sub.add_parser("tokens", help="mint, list or revoke bearer tokens")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True)
    create = tsub.add_parser("create", help="mint a token; its secret is printed once")
    create.add_argument("--host", action="append", default=[], help="a host it may write for")
    create.add_argument("--repository", action="append", default=[], help="owner/repo")
    create.add_argument("--read", action="store_true", help="a read token (API and page)")
    create.add_argument("--note", default="", help="what the token is for")
    tsub.add_parser("list", help="every token, without its secret")
    revoke = tsub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    return p


def tokens_command(args: argparse.Namespace, settings: Settings) -> int:
    registry = TokenRegistry(settings.tokens_path)
    if args.tokens_command == "create":
        if args.read == bool(args.host or args.repository):
            print("tokens create: either --read, or --host and --repository", file=sys.stderr)
            return 2
        kind: Literal["write", "read"] = "read" if args.read else "write"
        try:
            token, entry = registry.create(
                kind, tuple(args.host), tuple(args.repository), args.note
            )
        except ValueError as exc:
            print(f"tokens create: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(entry.public()), file=sys.stderr)
        print("The token is shown this once; it is stored only as a hash:", file=sys.stderr)
        print(token)
        return 0
    if args.tokens_command == "list":
        print(json.dumps([e.public() for e in registry.list()], indent=1))
        return 0
    if registry.revoke(args.token_id):
        print(f"revoked {args.token_id}", file=sys.stderr)
        return 0
    print(f"no live token {args.token_id}", file=sys.stderr)
    return 1


CONFIG_ENV = "LAUNCHPLANE_EVIDENCE_CONFIG"


def build_app(settings: Settings) -> tuple[Starlette, EvidenceStore]:
    store = settings.open_store()
    app = create_app(
        store,
        TokenRegistry(settings.tokens_path),
        max_body=settings.max_body_bytes,
        stale_after=timedelta(seconds=settings.stale_after_seconds),
    )
    return app, store


def worker_app() -> Starlette:
    """The app factory each uvicorn worker process calls (settings path from the parent)."""
    return build_app(load(os.environ.get(CONFIG_ENV) or None))[0]


def serve(settings: Settings, config_path: str | None) -> int:
    """uvicorn on the configured address (TLS when both files are set), systemd-ready."""
    options: dict[str, Any] = {
        "host": settings.listen_host,
        "port": settings.listen_port,
        "log_level": "info",
        "ssl_certfile": settings.tls_certfile,
        "ssl_keyfile": settings.tls_keyfile,
    }
    if settings.workers > 1:
        os.environ[CONFIG_ENV] = config_path or ""
        config = uvicorn.Config(
            "evidence.cli:worker_app", factory=True, workers=settings.workers, **options
        )
        return 0 if readiness.run(config) else 1
    app, store = build_app(settings)
    try:
        return 0 if readiness.run(uvicorn.Config(app, **options)) else 1
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load(args.config)
    if args.command == "tokens":
        return tokens_command(args, settings)
    if args.command == "migrate":
        migrate(settings.dsn())
        return 0
    return serve(settings, args.config)


if __name__ == "__main__":
    sys.exit(main())
