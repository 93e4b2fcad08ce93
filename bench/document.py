"""The document: docs/performance.md from a run's results."""

from __future__ import annotations

import math

from bench.analysis import findings
from bench.before_after import before_after_section, imports_section, limits_section
from bench.fmt import _error_of
from bench.results import Results, ok, series_list
from bench.tables import convergence_section, helper_section, parts_table, pass_table, targets_table

REGENERATE = 'flock /work/.sandbox.lock make bench BENCH_ARGS="--quick --wait-quiet 60"'
"""The one command that regenerates this page (the lock: the sandbox is shared here)."""


def render(results: Results) -> str:
    m = results["machine"]
    sandbox = results.get("sandbox", {})
    lines = [
        "# Performance",
        "",
        "What a reconcile pass costs and how that grows, how fast the helper answers, and how",
        "long a lane takes to converge. Written by `make bench` (`python -m bench`, see",
        "`bench/`) from one run on the machine below; the figures are medians of several runs",
        "and every comparison is a ratio measured in the same run. Nothing here is asserted by",
        "a test. ![benchmarks](performance.png)",
        "",
        f"Regenerate (one line, as root, from the repository root): `{REGENERATE}`",
        "",
        "## Machine and load",
        "",
        f"- {m['nproc']} CPU, {m['model_name']}, {m['ram_gib']} GiB RAM; kernel {m['kernel']}; "
        f"{m['os']}",
        f"- host Python for the agent: {m['python']} (a venv with the runtime dependencies "
        "only, from uv.lock, as the package ships them); systemd on the host: "
        f"{m['systemd']} (not PID 1)",
        f"- sandbox container: {sandbox.get('systemd', '—')} as PID 1, "
        f"{sandbox.get('python', '—')} (Debian's, the installed package's venv)",
        f"- code: commit `{results.get('git', {}).get('commit', 'unknown')}`, working tree "
        "changes: "
        + (", ".join(f"`{p}`" for p in results.get("git", {}).get("changed", [])) or "none"),
        f"- run {results['started']} → {results.get('finished', '—')}; waited "
        f"{results['quiet_wait']['waited_s']} s for a quiet machine, 1-minute load average at "
        f"start {results['quiet_wait']['load_1min']:.2f}, at the end "
        f"{results.get('load_at_end', [math.nan])[0]:.2f}. The machine is shared with other "
        "engineers' test runs; the load of each series is given with it: the 1-minute load "
        "average before → after (it counts this benchmark too, which keeps one to two CPUs "
        "busy), the others' share of the CPUs during the series (the machine's busy time "
        "from /proc/stat minus this benchmark's process tree and container) and the steal "
        "(time the hypervisor gave elsewhere while this VM wanted to run; it rises with every "
        "burst of process creation here, such as the `docker` probes).",
        "",
        "## Targets",
        "",
        *targets_table(results),
        "",
        "## Before → now (issue #17), next to the physical limits",
        "",
        "Each *now* is a median of the runs of this `make bench`; each physical limit was",
        "measured in the same run on the same machine (section 4): what no implementation",
        "of the figure can beat here.",
        "",
        *before_after_section(results),
        "",
        "## Findings",
        "",
        *findings(results),
        "",
        "## 1. Reconcile pass cost vs scale",
        "",
        "Lanes 1, 10, 50, 200 over 1, 5, 10, 20 repositories, all `apply = false` (a pass is",
        "observe → plan → `planned` record; the helper is never called). GitHub is the",
        "in-process `GitHubEmulator` with `validate=False` (no OpenAPI check: speed), on",
        "127.0.0.1, holding one runner per lane (online, labelled as declared, registered",
        "through its state API), so every listing is a real page of runners. Every lane has a",
        "runner directory with its `.runner` (BOM JSON), `run.sh` and `_work`, owned by the",
        "service user, in a temporary registration root. The agent is built by",
        "`agent.wiring.build_agent` as in production: `GitHubClient` with its ETag cache on disk,",
        "`FilesystemAuditStore`, the real directory observation, `check_baseline` and the",
        "Docker probe (`probe_docker`, once per pass), JSON logs rendered and discarded. Units",
        "come from `tests.agent.fakes.FakeUnits` (pure agent cost) or from the production",
        "`DbusUnitObserver` against the container's systemd.",
        "",
        "- *cold*: the first pass of a new process: empty ETag cache, empty audit store (it",
        "  writes one `planned` record per lane).",
        "- *steady*: the passes after it in the same process (median): every listing a 304, no",
        "  new record.",
        "- *timer-style*: a new process per pass, as the timer runs it (ETag cache and store",
        "  from disk): process wall from spawn to exit, and its CPU including start-up.",
        "- CPU: the agent process's own plus its children's (the `docker` probes). Peak RSS:",
        "  the process's `VmHWM`, the largest of all its processes at that scale. (`ru_maxrss`",
        "  would be wrong here: Linux carries it over `execve` from the forking parent, the",
        "  70 MB benchmark process; under systemd the parent is PID 1 and they agree.)",
        "- requests and units: the adapter's `RequestStats` (`requests`, `not_modified`,",
        "  `rate_limit_used`), cross-checked with the emulator's own rate-limit bucket.",
        "",
    ]
    for name, series in series_list(results):
        lines += [f"### {name}", "", *pass_table(series), ""]
    if not ok(results.get("host")):
        lines += [f"`host`: {(results.get('host') or {}).get('error', 'not measured')}", ""]
    for key in ("container_fake", "container_dbus"):
        if not ok(sandbox.get(key)):
            lines += [f"`{key}`: {_error_of(sandbox.get(key), results)}", ""]
    lines += ["### Where a steady 200-lane pass goes", "", *parts_table(results, 200), ""]
    lines += [
        "Exclusive wall time per call site (timers around the ports and functions the pass",
        "calls; a nested timed call is charged to the inner one), medians of the steady passes.",
        "",
        "## 2. Helper verb latency",
        "",
        "In the `lp-bench` container with the package installed by `tests/systemd/installed.py`",
        "(`install()`), real PID 1, socket-activated hardened helper. One Python process inside",
        "the container (the installed venv) times every call itself, so its own start-up is not",
        "counted. Counted for a helper verb: connect, request frame, the helper's work (peer",
        "check, lanes.toml, the verb, the fsync'd audit line), answer, parsing it — as the agent",
        "user (effective uid/gid switched around each call). *warm*: the helper already runs;",
        "*cold*: `systemctl stop launchplane-helper.service` first (not timed), so the timed",
        "call includes socket activation. `install-or-update-unit` is applied with the drop-in",
        "already current (the unchanged case: no write, no reload). Measured twice: on the",
        "example lane with its drop-in but its unit not running, and again after the",
        "convergence runs, on the converged lane (unit active, runner online).",
        "`systemctl show <unit>` and",
        "`systemctl daemon-reload` are timed as whole commands (fork/exec included), as an",
        "operator runs them; `dbus GetAll in-process` is how the agent itself reads a unit.",
        "Series are interleaved round by round.",
        "",
    ]
    lines += helper_section(results)
    lines += [
        "",
        "## 3. Convergence: apply → completed",
        "",
        "The example lane (`agent/examples/lanes.toml`) in the same container, the GitHub",
        "emulator inside it serving the runner emulator's release, the agent run as",
        "`tests/systemd/test_agent_e2e.py` runs it (`launchplane-agent --json apply` as",
        "launchplane-agent, real helper, real systemd). Every run starts from nothing: no unit,",
        "drop-in, runner directory, registration or cached archive. Total: the agent process's",
        'wall time, measured inside the container. Phases: `provider_evidence["steps"]` of the',
        "record (the phases' own timings); the rest of the wall is start-up, the observation",
        "before, the plan and writing records.",
        "",
        *convergence_section(sandbox.get("convergence"), results),
        "",
        "`online` is split by the emulator's own request log: *the runner connecting* ends when",
        "the listener's session is created (GitHub has it online); *GitHub has it → the agent",
        "sees it* is from there to verify's read that saw it (verify reads fresh once, then",
        "revalidates with `If-None-Match` 0.25 s apart, growing x1.25 to 2 s; 304s cost no",
        "rate limit). The stability window is the gates' (two samples of the unit, 4 s apart:",
        "docs/runner-lane-baseline.md), its own phase. *Our own share* is the wall minus the",
        "runner connecting and the stability window.",
        "",
        "## 4. Physical limits, same run",
        "",
        "Inside the same container, one Python process (the installed venv) times each: a",
        "D-Bus round trip to PID 1 (`org.freedesktop.DBus.Peer.Ping` to systemd, and `GetUnit`",
        "of a loaded unit, on one connection to the system bus), a Unix-socket round trip (64",
        "bytes to a forked echo process and back), and whole-process starts (fork, exec, exit).",
        "",
        *limits_section(results),
        "",
        "## 5. Import time at start-up (`python -X importtime`)",
        "",
        "PYTHONPROFILEIMPORTTIME=1 on the helper's cold start as socket activation runs it (a",
        "runtime drop-in; one `status` call starts it; the lines from its journal) and on",
        "`launchplane-agent --json reconcile --due` as the timer runs it (as launchplane-agent,",
        "the lane converged). Self time of every imported module, summed per top-level package;",
        "importtime's own bookkeeping inflates the totals a little.",
        "",
        *imports_section(results),
        "",
        "## Reproduce",
        "",
        "```sh",
        REGENERATE + "   # what wrote this page",
        "make bench                     # everything, a few minutes; root for the sandbox parts",
        "uv run python -m bench --quick # fewer repetitions",
        "uv run python -m bench.limits            # root: the physical limits, import times",
        "uv run python -m bench --no-sandbox",
        "uv run python -m bench.pass_cost --scales 10:5,200:20 [--units dbus]",
        "uv run python -m bench.helper_latency     # root",
        "uv run python -m bench.convergence        # root",
        "uv run python -m bench --from-json build/bench/results.json   # redraw only",
        "```",
        "",
        "Raw figures of this run: `build/bench/results.json` (not committed). The plot is drawn",
        "with matplotlib, a dev dependency only (`uv add --dev matplotlib`); the agent and the",
        "helper do not use it.",
        "",
    ]
    return "\n".join(lines)
