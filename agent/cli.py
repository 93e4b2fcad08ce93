"""`launchplane-agent`: plan (dry-run, the default), apply, status, restart, remove, audits,
and `reconcile`, the timer's pass."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from agent import logs
from agent.audit_store import FilesystemAuditStore
from agent.cli_parser import (
    EXIT_BLOCKED,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    _parser,
)
from agent.contracts import (
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerObservedState,
)
from agent.doctor import render_checks, run_doctor
from agent.doctor_probes import host_probes
from agent.errors import PassLocked
from agent.github.errors import GitHubCredentialError
from agent.planner import plan
from agent.render import (
    record_json,
    record_summary,
    render_compact,
    render_plan,
    render_record,
    render_table,
)
from agent.settings import AgentSettings, load_settings
from agent.status import orphan_section, status_rows
from agent.wiring import (
    after_pass,
    build_agent,
    declared_for_removal,
    deliver_evidence,
    find_orphans_of,
    pass_lock,
    progress_for,
)
from helper.contract.errors import ConfigError, LaunchplaneError, UsageError
from helper.contract.identifiers import lane_name_findings
from helper.contract.lanes import load_lanes
from helper.contract.redact import REDACTOR

__all__ = ["EXIT_BLOCKED", "EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "EXIT_USAGE", "main"]


def example_path(name: str) -> Path:
    """A file bundled with the package under agent/examples/."""
    return Path(str(resources.files("agent") / "examples" / name))


def _need_credentials(args: argparse.Namespace, paths: AgentSettings) -> None:
    """Refuse before touching anything when the credential directory cannot be read: run by
    hand, that means not root (the service reads systemd's copy as its own user)."""
    replay = args.command == "plan" and (args.example or args.observation)
    effective = os.access in os.supports_effective_ids  # sudo -u, or seteuid in tests
    readable = os.access(paths.credentials, os.R_OK | os.X_OK, effective_ids=effective)
    if args.command == "audits" or replay or readable:
        return
    raise UsageError(f"must run as root (reads {paths.credentials})")


def _out(args: argparse.Namespace, text: str, data: Any) -> None:
    if args.json:
        print(REDACTOR.redact(json.dumps(data, indent=2, sort_keys=True, default=str)))
    else:
        print(REDACTOR.redact(text))


def _lanes(args: argparse.Namespace, paths: AgentSettings) -> LanesFile:
    return load_lanes(args.lanes or paths.lanes_file)


def _select(declared: LanesFile, lane: str | None) -> list[str]:
    if lane is None:
        return list(dict.fromkeys(d.lane_name for d in declared.lanes))
    if lane_name_findings("--lane", lane):
        raise UsageError("--lane: unsafe lane name")
    if not declared.lanes_named(lane):
        raise UsageError(f"--lane: {lane!r} is not declared")
    return [lane]


def _exit_for(records: Sequence[RunnerLaneMaintainerAuditRecord]) -> int:
    if any(r.status == "failed" and r.plan.status == "blocked" for r in records):
        return EXIT_BLOCKED
    if any(r.status == "failed" for r in records):
        return EXIT_FAILED
    if any(r.plan.status == "blocked" for r in records):
        return EXIT_BLOCKED
    return EXIT_OK


def _pass_exit(declared: LanesFile, records: Sequence[RunnerLaneMaintainerAuditRecord]) -> int:
    """The timer's pass is fine when every `apply = true` lane is proven: an `apply = false`
    lane is only planned, and its plan being blocked is news for `plan`, not a failed pass."""
    applied = {lane.lane_name for lane in declared.lanes if lane.apply}
    return _exit_for([r for r in records if r.lane_name in applied])


def _print_records(
    args: argparse.Namespace,
    records: list[RunnerLaneMaintainerAuditRecord],
    is_replay: Callable[[RunnerLaneMaintainerAuditRecord], bool],
    declared: LanesFile | None = None,
) -> int:
    _out(
        args,
        "\n\n".join(render_record(r, replayed=is_replay(r)) for r in records),
        [record_json(r, replayed=is_replay(r)) for r in records],
    )
    return _exit_for(records) if declared is None else _pass_exit(declared, records)


def cmd_replay(args: argparse.Namespace) -> int:
    """Plan from a recorded observation, as of its time: no GitHub, no systemd, no token."""
    lanes_path = example_path("lanes.toml") if args.example else Path(args.lanes or "")
    observation = args.observation or str(example_path("observation.json"))
    declared = load_lanes(lanes_path)
    observed = RunnerLaneMaintainerObservedState.model_validate_json(
        Path(observation).read_text(encoding="utf-8")
    )
    results = [
        plan(declared, declared.lanes_named(name)[0], observed, PlanPolicy(), observed.observed_at)
        for name in _select(declared, args.lane)
        if name == observed.lane_name
    ]
    header = f"replaying observation recorded at {observed.observed_at.isoformat()}\n"
    _out(
        args,
        header + "\n\n".join(render_plan(r) for r in results),
        [r.model_dump(mode="json") for r in results],
    )
    return EXIT_BLOCKED if any(r.status == "blocked" for r in results) else EXIT_OK


def cmd_plan(args: argparse.Namespace, paths: AgentSettings) -> int:
    if args.example or args.observation:
        return cmd_replay(args)
    agent = build_agent(paths, _lanes(args, paths))
    records = [
        agent.run(agent.declared.lanes_named(name)[0], PlanPolicy())
        for name in _select(agent.declared, args.lane)
    ]
    return _print_records(args, records, agent.recorder.is_replay)


MUTATION_LOCK_WAIT = 120.0  # a timer pass ends well within this (docs/operations.md)


def cmd_act(args: argparse.Namespace, paths: AgentSettings, operation: Operation) -> int:
    acting = operation is Operation.RECONCILE or args.apply
    if not acting:
        return _act(args, paths, operation)
    with pass_lock(paths.runtime_dir, MUTATION_LOCK_WAIT):  # never beside a timer pass
        return _act(args, paths, operation)


def _act(args: argparse.Namespace, paths: AgentSettings, operation: Operation) -> int:
    """One lane's apply, restart or remove; progress on a terminal (not with --json)."""
    declared = _lanes(args, paths)
    if operation is Operation.REMOVE:  # an orphan this host's marks rebuild may be removed
        declared = declared_for_removal(paths, declared, args.lane)
    progress = progress_for(sys.stdout if sys.stdout.isatty() and not args.json else None)
    agent = build_agent(paths, declared, progress=progress)
    (name,) = _select(agent.declared, args.lane)
    acting = operation is Operation.RECONCILE or args.apply
    policy = PlanPolicy(
        operation=operation,
        mode="apply" if acting else "dry_run",
        idempotency_key=args.idempotency_key,
        confirmation=args.confirm,
        drain_confirmed=getattr(args, "drain", False),
        drain_wait_seconds=getattr(args, "wait", None),
    )
    try:
        record = agent.run(agent.declared.lanes_named(name)[0], policy)
    finally:
        progress.end()  # the last progress line ends before the record (or an error) is printed
    return _print_records(args, [record], agent.recorder.is_replay)


def cmd_status(args: argparse.Namespace, paths: AgentSettings) -> int:
    """Every lane as it is now. `proven` re-runs the completion gates on this observation:
    a stored `completed` alone never makes a lane proven. Exit 1 if any lane is not."""
    agent = build_agent(paths, _lanes(args, paths))
    names = _select(agent.declared, args.lane)
    lanes = [agent.declared.lanes_named(n)[0] for n in names]
    observed, _ = agent.observer.observe(lanes)
    rows = status_rows(agent, lanes, observed)
    orphans = [] if args.lane else find_orphans_of(agent, paths)
    text, orphan_rows = orphan_section(orphans)
    _out(args, (render_table(rows) if rows else "no lanes declared") + text, rows + orphan_rows)
    return EXIT_OK if all(r["proven"] == "yes" for r in rows + orphan_rows) else EXIT_FAILED


def cmd_audits(args: argparse.Namespace, paths: AgentSettings) -> int:
    store = FilesystemAuditStore(paths.audit_dir)
    if args.action == "show":
        if not args.record_id:
            raise UsageError("audits show: record_id is missing")
        record = store.get(args.record_id)
        _out(args, render_record(record), record.model_dump(mode="json"))
        return EXIT_OK
    records = list(store.records(args.lane))
    text = "\n".join(
        f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.status:<9} {r.lane_name}  {r.record_id}"
        for r in records
    )
    _out(
        args,
        text or "no records",
        [
            {
                "record_id": r.record_id,
                "lane": r.lane_name,
                "status": r.status,
                "created_at": r.created_at.isoformat(),
            }
            for r in records
        ],
    )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, paths: AgentSettings) -> int:
    """Every check of agent.doctor; exit 0 only when all pass."""
    declared: LanesFile | ConfigError
    try:
        declared = _lanes(args, paths)
        paths = paths.configured(declared)
    except ConfigError as exc:  # one finding among the others
        declared = exc
    checks = run_doctor(declared, paths, host_probes(paths))
    _out(args, render_checks(checks), [c.as_dict() for c in checks])
    return EXIT_OK if all(c.passed for c in checks) else EXIT_FAILED


def cmd_reconcile(args: argparse.Namespace, paths: AgentSettings) -> int:
    """The timer's pass; in the journal, one line per record (`audits show` has the rest)."""
    progress = progress_for(None)
    started = time.monotonic()
    with pass_lock(paths.runtime_dir):
        agent = build_agent(paths, _lanes(args, paths), progress=progress)
        records = agent.reconcile_pass(every_lane=not args.due)
        deliver_evidence(paths.configured(agent.declared))
        after_pass(paths, agent, records, time.monotonic() - started)
        summary = ", ".join(f"{r.lane_name}={r.status}" for r in records) or "no lanes"
        progress.step(None, f"pass done: {summary}")
    logs.get_logger(__name__).info("pass.done", lanes=len(records), summary=summary)
    if not logs.in_journal(os.environ):
        return _print_records(args, records, agent.recorder.is_replay, agent.declared)
    for r in records:
        line = json.dumps(record_summary(r), sort_keys=True) if args.json else render_compact(r)
        print(REDACTOR.redact(line))
    return _pass_exit(agent.declared, records)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "plan"])
    args.json = getattr(args, "json", False)
    args.lanes = getattr(args, "lanes", None)
    logs.configure_cli(
        verbose=getattr(args, "verbose", False), json_output=args.json, env=os.environ
    )
    try:
        paths = load_settings()
        _need_credentials(args, paths)
        if args.command == "plan":
            return cmd_plan(args, paths)
        if args.command in {"apply", "restart", "remove"}:
            operation = {
                "apply": Operation.RECONCILE,
                "restart": Operation.RESTART,
                "remove": Operation.REMOVE,
            }[args.command]
            return cmd_act(args, paths, operation)
        if args.command == "status":
            return cmd_status(args, paths)
        if args.command == "audits":
            return cmd_audits(args, paths)
        if args.command == "doctor":
            return cmd_doctor(args, paths)
        return cmd_reconcile(args, paths)
    except ConfigError as exc:
        print(REDACTOR.redact(str(exc)), file=sys.stderr)
        return EXIT_USAGE
    except GitHubCredentialError as exc:
        print(REDACTOR.redact(f"launchplane-agent: credential: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(REDACTOR.redact(f"launchplane-agent: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except PassLocked as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except LaunchplaneError as exc:
        print(REDACTOR.redact(f"error: {exc.code}: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except PermissionError as exc:  # a file only root may read or write, met by hand
        where = exc.filename or "a file of the agent's"
        hint = "must run as root" if os.geteuid() != 0 else "check its owner and mode"
        print(f"launchplane-agent: {where}: permission denied: {hint}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
