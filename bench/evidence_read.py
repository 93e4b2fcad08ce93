"""Read figures of the evidence service: a fleet COPY'd into PostgreSQL (and a smaller one
written as files), queried through the store, the API and plain SQL, with query plans."""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from evidence.app import API, create_app
from evidence.fs_store import FilesystemEvidenceStore, file_name
from evidence.pg_store import PostgresEvidenceStore, migrate
from evidence.serving import serve_in_thread
from evidence.tokens import TokenRegistry
from tests.evidence import factories as ef
from tests.evidence.postgres import Cluster

TEMPLATE = ef.record("completed").model_dump_json()
TEMPLATE_ID = ef.record("completed").record_id
Row = tuple[str, dict[str, float]]


def load_postgres(dsn: str, hosts: int, lanes: int, per_lane: int) -> int:
    """COPY a fleet straight into both tables: per lane `per_lane - 1` planned records and one
    terminal record (completed, or failed for every fourth lane)."""
    rec_cols = (
        "record_id, idempotency_key, digest, host, repository, lane, status, failed_gate,"
        " created_at, stored_at, token_id, record"
    )
    lane_cols = "host, lane, repository, " + ", ".join(
        f"{c}_{f}"
        for c in ("latest", "terminal", "completed", "failed")
        for f in ("id", "at", "status", "gate")
    )
    base = ef.NOW
    count = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY evidence_records ({rec_cols}) FROM STDIN") as rec_copy:
            for h in range(hosts):
                for n in range(lanes):
                    for k in range(per_lane):
                        status = (
                            "planned"
                            if k < per_lane - 1
                            else ("failed" if n % 4 == 0 else "completed")
                        )
                        rid = f"k-{status}-{h:05d}{n:02d}{k:03d}"
                        at = base.replace(minute=k % 60, second=(h + n) % 60)
                        gate = "github_exactly_one_online" if status == "failed" else None
                        rec_copy.write_row(
                            (
                                rid,
                                rid,
                                "0" * 64,
                                f"host-{h:05d}",
                                ef.REPO,
                                f"lane-{n:02d}",
                                status,
                                gate,
                                at,
                                at,
                                "bench",
                                TEMPLATE.replace(TEMPLATE_ID, rid),
                            )
                        )
                        count += 1
        with cur.copy(f"COPY evidence_lanes ({lane_cols}) FROM STDIN") as lane_copy:
            for h in range(hosts):
                for n in range(lanes):
                    k = per_lane - 1
                    status = "failed" if n % 4 == 0 else "completed"
                    rid = f"k-{status}-{h:05d}{n:02d}{k:03d}"
                    at = base.replace(minute=k % 60, second=(h + n) % 60)
                    gate = "github_exactly_one_online" if status == "failed" else None
                    ptr = (rid, at, status, gate)
                    none = (None, None, None, None)
                    lane_copy.write_row(
                        (
                            f"host-{h:05d}",
                            f"lane-{n:02d}",
                            ef.REPO,
                            *ptr,
                            *ptr,
                            *(ptr if status == "completed" else none),
                            *(ptr if status == "failed" else none),
                        )
                    )
        conn.execute("ANALYZE")
    return count


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": statistics.median(values), "max_ms": max(values)}


def explain(dsn: str, sql: str) -> str:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + sql).encode()).fetchall()
    return "\n".join(str(r[0]) for r in rows)


SUMMARY_SQL = "SELECT * FROM evidence_lanes ORDER BY host, lane"
COUNTS_SQL = (
    "SELECT count(*) FILTER (WHERE terminal_status = 'completed'), count(*) FROM evidence_lanes"
)
PAGE_SQL = (
    "SELECT * FROM evidence_lanes WHERE (host, lane) > ('{middle}', 'lane-00') "
    "ORDER BY host, lane LIMIT 1000"
)
LANE_COMPLETED_SQL = (
    "SELECT record::text FROM evidence_records WHERE host = '{third}' AND lane = 'lane-03'"
    " AND status = 'completed' ORDER BY created_at DESC, record_id DESC LIMIT 1"
)
BY_LANE_SQL = (
    "SELECT record::text FROM evidence_records WHERE lane = 'lane-03' "
    "ORDER BY created_at DESC, record_id DESC LIMIT 100"
)


def _api_rows(store: PostgresEvidenceStore, tmp: Path, middle: str) -> list[Row]:
    """GET /fleet and /lanes pages of 1,000 lanes from the middle of the fleet, over HTTP."""
    registry = TokenRegistry(tmp / "read-tokens.json")
    token, _ = registry.create("read")
    app = create_app(store, registry, stale_after=timedelta(hours=1))
    cursor = base64.urlsafe_b64encode(json.dumps([middle, "lane-00"]).encode()).decode()
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {token}"}

        def get(route: str) -> None:
            reply = http.get(
                f"{API}/{route}", params={"limit": "1000", "cursor": cursor}, headers=headers
            )
            if reply.status_code != 200 or len(reply.json()["lanes"]) != 1000:
                raise RuntimeError(f"{route}: HTTP {reply.status_code}")

        return [
            ("API: fleet summary, a page of 1,000 lanes", timed(lambda: get("fleet"), 20)),
            (
                "API: latest and latest completed, a page of 1,000 lanes",
                timed(lambda: get("lanes"), 20),
            ),
        ]


def read_postgres(
    cluster: Cluster, hosts: int, lanes: int, per_lane: int, tmp: Path
) -> dict[str, Any]:
    dsn = cluster.create_database("evidence_read")
    migrate(dsn)
    t0 = time.perf_counter()
    count = load_postgres(dsn, hosts, lanes, per_lane)
    load_s = time.perf_counter() - t0
    store = PostgresEvidenceStore(dsn)
    try:
        middle, third = f"host-{hosts // 2:05d}", f"host-{hosts // 3:05d}"
        page_sql = PAGE_SQL.format(middle=middle)
        lane_completed_sql = LANE_COMPLETED_SQL.format(third=third)
        rows = _api_rows(store, tmp, middle)
        with psycopg.connect(dsn) as conn:

            def sql(text: str) -> Callable[[], object]:
                return lambda: conn.execute(text.encode()).fetchall()

            rows += [
                ("SQL: a page of 1,000 lanes", timed(sql(page_sql), 50)),
                ("SQL: fleet counts (proven of all lanes)", timed(sql(COUNTS_SQL), 20)),
                ("SQL: latest completed record of one lane", timed(sql(lane_completed_sql), 50)),
                ("SQL: 100 newest records of a lane name, fleet-wide", timed(sql(BY_LANE_SQL), 20)),
                (f"SQL: every lane's row fetched ({hosts * lanes:,})", timed(sql(SUMMARY_SQL), 5)),
            ]
            size = conn.execute(
                b"SELECT pg_total_relation_size('evidence_records'),"
                b" pg_total_relation_size('evidence_lanes')"
            ).fetchone()
        rows.append(
            (f"store.lanes(): all {hosts * lanes:,} lanes as objects", timed(store.lanes, 3))
        )
        plans = {
            name: explain(dsn, text)
            for name, text in (
                ("a page of the summary", page_sql),
                ("fleet counts", COUNTS_SQL),
                ("latest completed of one lane", lane_completed_sql),
                ("by lane name", BY_LANE_SQL),
            )
        }
    finally:
        store.close()
    records_bytes, lanes_bytes = size if size else (0, 0)
    return {
        "records": count,
        "lanes": hosts * lanes,
        "load_s": load_s,
        "rows": rows,
        "plans": plans,
        "bytes_per_record": records_bytes / count,
        "bytes_per_lane": lanes_bytes / (hosts * lanes),
    }


def read_filesystem(root: Path, hosts: int, lanes: int, per_lane: int) -> dict[str, Any]:
    """Files written straight (no fsync) by the same layout the store uses."""
    records = root / "records"
    records.mkdir(parents=True)
    count = 0
    for h in range(hosts):
        for n in range(lanes):
            for k in range(per_lane):
                status = "planned" if k < per_lane - 1 else "completed"
                rec = ef.record(
                    status,
                    host=f"host-{h:05d}",
                    lane=f"lane-{n:02d}",
                    at=ef.NOW.replace(minute=k % 60),
                )
                data = json.dumps(
                    {
                        "digest": "0" * 64,
                        "stored_at": rec.created_at.isoformat(),
                        "token_id": "bench",
                        "record": json.loads(rec.model_dump_json()),
                    }
                )
                (records / file_name(rec.record_id)).write_text(data)
                count += 1
    store = FilesystemEvidenceStore(root)
    rows: list[Row] = [
        (
            "every lane, cold (each file parsed)",
            timed(lambda: FilesystemEvidenceStore(root).lanes(), 2),
        ),
    ]
    store.lanes()
    rows += [
        ("every lane, warm (parsed records cached)", timed(store.lanes, 3)),
        (
            "a page of 1,000 lanes, warm",
            timed(lambda: store.lanes(after=("host-00500", ""), limit=1000), 3),
        ),
    ]
    return {"records": count, "lanes": hosts * lanes, "rows": rows}
