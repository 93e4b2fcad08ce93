"""The read API (read scope): records with cursor pagination, latest per lane, fleet summary."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from evidence.ingest import stored_json
from evidence.screen import Refused
from evidence.store import STATUSES, EvidenceStore, RecordQuery
from evidence.summary import latest_json, summary_json

MAX_LIMIT = 500


def encode_cursor(created_at: datetime, record_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, record_id = json.loads(raw)
        parsed = datetime.fromisoformat(when)
    except (ValueError, TypeError, binascii.Error):
        raise Refused(400, "malformed cursor") from None
    if parsed.tzinfo is None or not isinstance(record_id, str):
        raise Refused(400, "malformed cursor")
    return parsed, record_id


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(400, f"{name} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise Refused(400, f"{name} needs a timezone")
    return parsed


def parse_query(request: Request) -> RecordQuery:
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise Refused(400, f"status is one of {', '.join(STATUSES)}")
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise Refused(400, f"limit is 1..{MAX_LIMIT}")
    cursor = params.get("cursor")
    return RecordQuery(
        lane=params.get("lane"),
        host=params.get("host"),
        repository=params.get("repository"),
        status=status,
        since=_time(request, "since"),
        until=_time(request, "until"),
        after=decode_cursor(cursor) if cursor else None,
        limit=int(limit_text),
    )


async def records(request: Request, store: EvidenceStore) -> JSONResponse:
    query = parse_query(request)
    page = await run_in_threadpool(store.query, query)
    last = page[-1].sort_key if len(page) == query.limit else None
    return JSONResponse(
        {
            "records": [stored_json(s, with_record=True) for s in page],
            "next_cursor": encode_cursor(*last) if last else None,
        }
    )


async def one_record(request: Request, store: EvidenceStore) -> JSONResponse:
    stored = await run_in_threadpool(store.get, request.path_params["record_id"])
    if stored is None:
        raise Refused(404, "no such record")
    return JSONResponse(stored_json(stored, with_record=True))


async def lanes(request: Request, store: EvidenceStore) -> JSONResponse:
    states = await run_in_threadpool(store.lanes, request.query_params.get("host"))
    return JSONResponse({"lanes": [latest_json(s) for s in states]})


async def fleet(
    request: Request, store: EvidenceStore, now: datetime, stale_after: timedelta
) -> JSONResponse:
    states = await run_in_threadpool(store.lanes, request.query_params.get("host"))
    return JSONResponse(
        {
            "generated_at": now.isoformat(),
            "stale_after_seconds": int(stale_after.total_seconds()),
            "lanes": [summary_json(s, now, stale_after) for s in states],
        }
    )
