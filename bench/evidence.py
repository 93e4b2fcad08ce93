"""`python -m bench.evidence`: the evidence service's ingest and read figures, PostgreSQL vs
the filesystem store, written to the "Evidence service" section of docs/performance.md."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.evidence_read import TEMPLATE, TEMPLATE_ID, read_filesystem, read_postgres
from evidence.ingest import ROUTE
from evidence.pg_store import migrate
from evidence.tokens import TokenRegistry
from tests.evidence import factories as ef
from tests.evidence.postgres import running_cluster

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "performance.md"
START, END = "<!-- evidence-bench:start -->", "<!-- evidence-bench:end -->"
NOTES = (REPO / "bench" / "evidence_notes.md").read_text(encoding="utf-8").strip()


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


def render(results: dict[str, Any]) -> str:
    pg, fs = results["read_pg"], results["read_fs"]
    out = [
        START,
        "",
        "## Evidence service",
        "",
        f"`make bench-evidence` ({results['args']}) on {results['machine']}, "
        f"{os.cpu_count()} CPUs shared with other work (load average "
        f"{results['load'][0]:.1f} before, {results['load'][1]:.1f} after), one run. The "
        f"service is `launchplane-evidence serve` in its own process (uvicorn, "
        f"{results['workers']} worker processes, httptools + uvloop); the clients are threads "
        "of the benchmark process (http.client, one keep-alive connection each), on the same "
        "2 CPUs; PostgreSQL is Debian's, a throwaway cluster with default durability (fsync "
        "on, synchronous commit). CPU per record is read from /proc for the service's and "
        "PostgreSQL's process trees.",
        "",
        "### Ingest (POST, each a new `completed` record of 4.6 kB)",
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
    out += [
        "",
        "### Read",
        "",
        f"PostgreSQL: {pg['records']:,} records over {pg['lanes']:,} lanes, loaded by COPY in "
        f"{pg['load_s']:.0f} s ({pg['bytes_per_record']:.0f} bytes per record on disk with "
        f"indexes, {pg['bytes_per_lane']:.0f} per lane-state row). Filesystem: "
        f"{fs['records']:,} records over {fs['lanes']:,} lanes (more files take too long to "
        "write and parse here: the filesystem store is for one site).",
        "",
        "| store | read | p50 | max |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {store} | {label} | {v['p50_ms']:.2f} ms | {v['max_ms']:.2f} ms |"
        for store, rows in (("PostgreSQL", pg["rows"]), ("filesystem", fs["rows"]))
        for label, v in rows
    ]
    out.append("")
    for name, plan in pg["plans"].items():
        out += [f"Plan, {name}:", "", "```", plan, "```", ""]
    out += [NOTES, "", END, ""]
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
    p.add_argument("--per-lane", type=int, default=10, help="records per lane (PostgreSQL)")
    p.add_argument("--fs-hosts", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    results: dict[str, Any] = {
        "machine": platform.machine(),
        "ingest": [],
        "workers": args.workers,
        "args": " ".join(argv if argv is not None else sys.argv[1:]) or "defaults",
    }
    load_before = os.getloadavg()[0]
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
        results["read_pg"] = read_postgres(cluster, args.hosts, 10, args.per_lane, Path(tmp))
        print(json.dumps({k: v for k, v in results["read_pg"].items() if k != "plans"}))
        results["read_fs"] = read_filesystem(Path(tmp) / "fs-read", args.fs_hosts, 10, 2)
        print(json.dumps(results["read_fs"]), flush=True)
    results["load"] = (load_before, os.getloadavg()[0])
    text = render(results)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
