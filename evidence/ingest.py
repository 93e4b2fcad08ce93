"""POST /v1/evidence/runner-lane-maintainer/audits, as docs/service-boundary.md specifies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from evidence.auth import authenticate, bearer
from evidence.screen import IDEMPOTENCY_KEY_RE, Refused, screen
from evidence.store import EvidenceStore, StoredRecord
from evidence.tokens import WRITE_ACTION, TokenRegistry

ROUTE = "/v1/evidence/runner-lane-maintainer/audits"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or Refused(413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def stored_json(stored: StoredRecord, with_record: bool) -> dict[str, object]:
    out: dict[str, object] = {
        "record_id": stored.record_id,
        "stored_at": stored.stored_at.isoformat(),
    }
    if with_record:
        out["record"] = stored.record.model_dump(mode="json")
    return out


async def accept(
    request: Request,
    store: EvidenceStore,
    registry: TokenRegistry,
    max_body: int,
    clock: Callable[[], datetime],
) -> JSONResponse:
    """401/403 before the body is read; 400 without a key; 413; 422; then 201/200/409."""
    token = bearer(request)
    entry = authenticate(registry, token)
    if entry.kind != "write":
        raise Refused(403, f"token {entry.token_id} may not {WRITE_ACTION}")
    key = request.headers.get("idempotency-key", "")
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise Refused(400, "an Idempotency-Key header (the record id) is required")
    body = await read_body(request, max_body)
    screened = screen(body, token)
    record = screened.record
    if record.record_id != key:
        raise Refused(422, "Idempotency-Key must equal the record's record_id")
    if record.lane_name != record.desired.lane_name:
        raise Refused(422, "lane_name must equal desired.lane_name")
    if not entry.allows(WRITE_ACTION, record.desired.host_name, record.desired.scope):
        raise Refused(
            403, f"token {entry.token_id} may not {WRITE_ACTION} for this host and repository"
        )
    stored = StoredRecord(record, screened.digest, clock(), entry.token_id)
    result = await run_in_threadpool(store.put, stored)
    if result.outcome == "created":
        return JSONResponse(stored_json(result.stored, with_record=False), status_code=201)
    if result.outcome == "replay":
        return JSONResponse(stored_json(result.stored, with_record=True), status_code=200)
    return JSONResponse(
        {"error": "this Idempotency-Key was stored with a different body", "record_id": key},
        status_code=409,
    )
