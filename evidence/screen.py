"""Incoming bodies: parse into the one record model, refuse anything token-shaped."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from pydantic import ValidationError

from agent.contracts import RunnerLaneMaintainerAuditRecord
from helper.contract.redact import variants

IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

# Shapes of secrets a record must never carry (it carries a token's `expires_at` only). Patterns
# start with a literal where they can, so the regex engine scans for it quickly; the
# case-insensitive one is searched only when its word is there at all.
TOKEN_SHAPES: dict[str, re.Pattern[str]] = {
    "github token": re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    "github fine-grained token": re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    "runner registration token": re.compile(r"(?<![A-Za-z0-9])[A-Z0-9]{29}(?![A-Za-z0-9])"),
    "json web token": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "evidence token": re.compile(r"lpe_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}"),
    "runner input token": re.compile(r"ACTIONS_RUNNER_INPUT_TOKEN"),
}
BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}")


class Refused(Exception):
    """The request is refused with `status`; `reason` is safe to return (never echoes input)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Screened:
    record: RunnerLaneMaintainerAuditRecord
    digest: str


@functools.lru_cache(maxsize=64)
def _forms(token: str, secret_part: str) -> frozenset[str]:
    """The encodings of a presented token and of its secret part (cached per token)."""
    return frozenset(variants(token) | variants(secret_part))


def token_shapes(text: str) -> list[str]:
    """Names of the secret shapes found in `text` (never the matched text itself)."""
    found = [name for name, pattern in TOKEN_SHAPES.items() if pattern.search(text)]
    if "bearer" in text.lower() and BEARER.search(text):
        found.append("bearer credential")
    return sorted(found)


def screen(body: bytes, presented_token: str) -> Screened:
    """Decode, refuse token-shaped content, validate against the record model (which refuses a
    `completed` record without all eight gates). Raises Refused(422)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(422, "body is not UTF-8") from None
    found = token_shapes(text)
    parts = presented_token.split("_", 2)  # lpe_<id>_<secret>: the secret alone counts too
    secret_part = parts[2] if len(parts) == 3 else presented_token
    forms = _forms(presented_token, secret_part) if presented_token else frozenset()
    if any(form in text for form in forms):
        found.append("the bearer token")
    if found:
        raise Refused(422, f"body carries token-shaped content ({', '.join(found)})")
    try:
        record = RunnerLaneMaintainerAuditRecord.model_validate_json(text)
    except ValidationError as exc:
        where = sorted({".".join(str(p) for p in e["loc"]) or "record" for e in exc.errors()})
        raise Refused(422, f"not a valid record: {', '.join(where)[:300]}") from None
    canonical = record.model_dump_json().encode()
    return Screened(record, hashlib.sha256(canonical).hexdigest())
