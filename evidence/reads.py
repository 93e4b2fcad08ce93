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
from evidence.store import STATUSES, EvidenceStore, LaneState, RecordQuery
from evidence.summary import latest_json, summary_json

MAX_LIMIT = 500


MAX_LANES = 5000


def _encode(items: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(items).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list[str]:
    try:
        items = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise Refused(400, "malformed cursor") from None
    if (
        not isinstance(items, list)
        or len(items) != size
        or not all(isinstance(i, str) for i in items)
    ):
        raise Refused(400, "malformed cursor")
    return items


def encode_cursor(created_at: datetime, record_id: str) -> str:
    return _encode([created_at.isoformat(), record_id])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    when, record_id = _decode(cursor, 2)
    try:
        parsed = datetime.fromisoformat(when)
    except ValueError:
        raise Refused(400, "malformed cursor") from None
    if parsed.tzinfo is None:
        raise Refused(400, "malformed cursor")
    return parsed, record_id


def _limit(request: Request, default: int, most: int) -> int:
    text = request.query_params.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise Refused(400, f"limit is 1..{most}")
    return int(text)


def lane_page(request: Request, store: EvidenceStore) -> tuple[list[LaneState], str | None]:
    """A page of lane states by (host, lane) and the cursor of the next one."""
    limit = _limit(request, 1000, MAX_LANES)
    cursor = request.query_params.get("cursor")
    after = None
    if cursor:
        last_host, last_lane = _decode(cursor, 2)
        after = (last_host, last_lane)
    states = store.lanes(request.query_params.get("host"), after, limit)
    last = states[-1] if len(states) == limit else None
    return states, _encode([last.host, last.lane]) if last else None


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
    limit = _limit(request, 100, MAX_LIMIT)
    cursor = params.get("cursor")
    return RecordQuery(
        lane=params.get("lane"),
        host=params.get("host"),
        repository=params.get("repository"),
        status=status,
        since=_time(request, "since"),
        until=_time(request, "until"),
        after=decode_cursor(cursor) if cursor else None,
        limit=limit,
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
    states, next_cursor = await run_in_threadpool(lane_page, request, store)
    return JSONResponse({"lanes": [latest_json(s) for s in states], "next_cursor": next_cursor})


async def fleet(
    request: Request, store: EvidenceStore, now: datetime, stale_after: timedelta
) -> JSONResponse:
    states, next_cursor = await run_in_threadpool(lane_page, request, store)
    return JSONResponse(
        {
            "generated_at": now.isoformat(),
            "stale_after_seconds": int(stale_after.total_seconds()),
            "lanes": [summary_json(s, now, stale_after) for s in states],
            "next_cursor": next_cursor,
        }
    )
