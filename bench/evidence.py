"""`python -m bench.evidence`: the evidence service's ingest and read figures, PostgreSQL vs
the filesystem store, written to the "Evidence service" section of docs/performance.md."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from evidence.fs_store import FilesystemEvidenceStore, file_name
from evidence.ingest import ROUTE
from evidence.pg_store import PostgresEvidenceStore, migrate
from evidence.tokens import TokenRegistry
from tests.evidence import factories as ef
from tests.evidence.postgres import Cluster, running_cluster

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "performance.md"
START, END = "<!-- evidence-bench:start -->", "<!-- evidence-bench:end -->"
TEMPLATE = ef.record("completed").model_dump_json()
TEMPLATE_ID = ef.record("completed").record_id


def body_for(i: int, prefix: str) -> tuple[str, bytes]:
    """A valid completed record with a fresh id (string substitution: cheap per request)."""
    record_id = f"k-completed-{prefix}{i:012d}"
    return record_id, TEMPLATE.replace(TEMPLATE_ID, record_id).encode()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of `root` and every live descendant, from /proc."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    tick = os.sysconf("SC_CLK_TCK")
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        total += stats.get(pid, (0, 0))[1] / tick
        frontier += [child for child, (ppid, _) in stats.items() if ppid == pid]
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def service(
    store: str, state: Path, dsn: str | None, workers: int
) -> Iterator[tuple[str, str, int]]:
    """`launchplane-evidence serve` in its own process on a free loopback port."""
    registry = TokenRegistry(state / "tokens.json")
    token, _ = registry.create("write", (ef.HOST,), (ef.REPO,))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = state / "evidence.toml"
    lines = [f'store = "{store}"', f'state_directory = "{state}"', f"listen_port = {port}"]
    if dsn is not None:
        (state / "dsn").write_text(dsn)
        lines += [f'postgresql_dsn_file = "{state / "dsn"}"', "pool_size = 8"]
    lines.append(f"workers = {workers}")
    config.write_text("\n".join(lines) + "\n")
    argv = [sys.executable, "-m", "evidence.cli", "--config", str(config), "serve"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, token, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def ingest(url: str, token: str, clients: int, total: int, prefix: str) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    host, port = url.removeprefix("http://").split(":")

    def worker() -> None:
        mine: list[float] = []
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                record_id, data = body_for(i, prefix)
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": record_id,
                    "Content-Type": "application/json",
                }
                t0 = time.perf_counter()
                conn.request("POST", ROUTE, body=data, headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - t0)
                if response.status != 201:
                    raise RuntimeError(f"HTTP {response.status}")
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "records": len(latencies),
        "per_s": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


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
ONE_HOST_SQL = "SELECT * FROM evidence_lanes WHERE host = 'host-04242' ORDER BY host, lane"
BY_LANE_SQL = (
    "SELECT record::text FROM evidence_records WHERE lane = 'lane-03' "
    "ORDER BY created_at DESC, record_id DESC LIMIT 100"
)


def read_postgres(cluster: Cluster, hosts: int, lanes: int, per_lane: int) -> dict[str, Any]:
    dsn = cluster.create_database("evidence_read")
    migrate(dsn)
    t0 = time.perf_counter()
    count = load_postgres(dsn, hosts, lanes, per_lane)
    load_s = time.perf_counter() - t0
    store = PostgresEvidenceStore(dsn)
    try:
        with psycopg.connect(dsn) as conn:
            sql_summary = timed(lambda: conn.execute(SUMMARY_SQL.encode()).fetchall(), 10)
            one_host = timed(lambda: conn.execute(ONE_HOST_SQL.encode()).fetchall(), 50)
            by_lane = timed(lambda: conn.execute(BY_LANE_SQL.encode()).fetchall(), 20)
        store_summary = timed(store.lanes, 5)
        plans = {
            name: explain(dsn, sql)
            for name, sql in (
                ("summary", SUMMARY_SQL),
                ("one host", ONE_HOST_SQL),
                ("by lane", BY_LANE_SQL),
            )
        }
    finally:
        store.close()
    return {
        "records": count,
        "lanes": hosts * lanes,
        "load_s": load_s,
        "sql_summary": sql_summary,
        "one_host": one_host,
        "by_lane": by_lane,
        "store_summary": store_summary,
        "plans": plans,
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
    cold = timed(lambda: FilesystemEvidenceStore(root).lanes(), 3)
    store = FilesystemEvidenceStore(root)
    store.lanes()
    warm = timed(store.lanes, 5)
    return {"records": count, "lanes": hosts * lanes, "cold": cold, "warm": warm}


def render(results: dict[str, Any]) -> str:
    out = [
        START,
        "",
        "## Evidence service",
        "",
        f"`make bench-evidence` on {results['machine']} ({os.cpu_count()} CPUs, shared with "
        "other work), one run; the service is `launchplane-evidence serve` in its own "
        f"process (uvicorn, {results['workers']} worker processes), the clients are threads of the "
        "benchmark process (http.client, one keep-alive connection each), PostgreSQL is "
        "Debian's, a throwaway cluster with default durability (fsync on).",
        "",
        "### Ingest (POST, each a new completed record)",
        "",
        "| store | clients | records | records/s | p50 | p99 | CPU/record: service | PostgreSQL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["ingest"]:
        out.append(
            f"| {row['store']} | {row['clients']} | {row['records']} | "
            f"{row['per_s']:.0f} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | "
            f"{row['service_cpu_ms']:.2f} ms | {row['pg_cpu_ms']:.2f} ms |"
        )
    pg = results["read_pg"]
    fs = results["read_fs"]
    out += [
        "",
        "### Read",
        "",
        f"PostgreSQL: {pg['records']:,} records, {pg['lanes']:,} lanes "
        f"(loaded by COPY in {pg['load_s']:.0f} s). Filesystem: {fs['records']:,} records, "
        f"{fs['lanes']:,} lanes.",
        "",
        "| read | p50 | max |",
        "|---|---|---|",
        f"| PostgreSQL: fleet summary = latest / latest completed of every lane (SQL) | "
        f"{pg['sql_summary']['p50_ms']:.1f} ms | {pg['sql_summary']['max_ms']:.1f} ms |",
        f"| PostgreSQL: the same through `store.lanes()` (rows to objects) | "
        f"{pg['store_summary']['p50_ms']:.0f} ms | {pg['store_summary']['max_ms']:.0f} ms |",
        f"| PostgreSQL: one host's lanes | {pg['one_host']['p50_ms']:.2f} ms | "
        f"{pg['one_host']['max_ms']:.2f} ms |",
        f"| PostgreSQL: 100 newest records of a lane name across the fleet | "
        f"{pg['by_lane']['p50_ms']:.2f} ms | {pg['by_lane']['max_ms']:.2f} ms |",
        f"| filesystem: fleet summary, cold (parse every file) | {fs['cold']['p50_ms']:.0f} ms"
        f" | {fs['cold']['max_ms']:.0f} ms |",
        f"| filesystem: fleet summary, warm (parsed records cached) | "
        f"{fs['warm']['p50_ms']:.0f} ms | {fs['warm']['max_ms']:.0f} ms |",
        "",
    ]
    for name, plan in pg["plans"].items():
        out += [f"Plan, {name}:", "", "```", plan, "```", ""]
    out += [results.get("notes", ""), "", END, ""]
    return "\n".join(out)


def write_section(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START in doc and END in doc:
        doc = doc[: doc.index(START)] + text + doc[doc.index(END) + len(END) + 1 :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--records", type=int, default=3000, help="posts per ingest run")
    p.add_argument("--hosts", type=int, default=10000)
    p.add_argument("--per-lane", type=int, default=3, help="records per lane (PostgreSQL)")
    p.add_argument("--fs-hosts", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    results: dict[str, Any] = {"machine": platform.machine(), "ingest": [], "workers": args.workers}
    with running_cluster(fsync=True) as cluster, tempfile.TemporaryDirectory() as tmp:
        for store in ("postgresql", "filesystem"):
            for clients in (1, 16, 64):
                state = Path(tmp) / f"{store}-{clients}"
                state.mkdir()
                dsn = None
                if store == "postgresql":
                    dsn = cluster.create_database(f"evidence_ingest_{clients}")
                    migrate(dsn)
                with service(store, state, dsn, args.workers) as (url, token, pid):
                    pg_pid = cluster.process.pid if cluster.process else 0
                    before = (tree_cpu(pid), tree_cpu(pg_pid))
                    row = ingest(url, token, clients, args.records, f"{clients:02d}")
                    row["service_cpu_ms"] = (tree_cpu(pid) - before[0]) * 1000 / row["records"]
                    row["pg_cpu_ms"] = (
                        (tree_cpu(pg_pid) - before[1]) * 1000 / row["records"] if dsn else 0.0
                    )
                results["ingest"].append({"store": store, **row})
                print(json.dumps(results["ingest"][-1]), flush=True)
        results["read_pg"] = read_postgres(cluster, args.hosts, 10, args.per_lane)
        print(json.dumps({k: v for k, v in results["read_pg"].items() if k != "plans"}))
        results["read_fs"] = read_filesystem(Path(tmp) / "fs-read", args.fs_hosts, 10, 2)
        print(json.dumps(results["read_fs"]), flush=True)
    text = render(results)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
