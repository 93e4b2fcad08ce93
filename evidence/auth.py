"""Who is asking: the bearer token (or the fleet page's cookie) against the token registry."""

from __future__ import annotations

from starlette.requests import Request

from evidence.screen import Refused
from evidence.tokens import READ_ACTION, TokenEntry, TokenRegistry

COOKIE = "lpe_read"


def bearer(request: Request) -> str:
    """The presented bearer token, or Refused(401)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "a bearer token is required")
    return token


def authenticate(registry: TokenRegistry, token: str) -> TokenEntry:
    entry = registry.authenticate(token)
    if entry is None:
        raise Refused(401, "unknown or revoked token")
    return entry


def reader(request: Request, registry: TokenRegistry, cookie: bool = False) -> TokenEntry:
    """A live token with the read scope, from the Authorization header (or the page cookie)."""
    token = request.cookies.get(COOKIE, "") if cookie else bearer(request)
    if not token:
        raise Refused(401, "a read token is required")
    entry = authenticate(registry, token)
    if not entry.allows(READ_ACTION):
        raise Refused(403, f"token {entry.token_id} may not read evidence")
    return entry
