"""The `launchplane-agent` command line: its subcommands, options and exit codes (no logic:
`agent.cli` runs them; bash completion is generated from this parser)."""

from __future__ import annotations

import argparse
from importlib import metadata

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_LOCKED = 75
EXIT_CODES = f"""exit codes:
  {EXIT_OK}   ready (dry-run), completed, removed
  {EXIT_FAILED}   failed: a step or a completion gate failed (see the audit record)
  {EXIT_USAGE}   usage or configuration error (file, field and problem printed)
  {EXIT_BLOCKED}   blocked: the plan has blockers (codes and next steps printed)
  {EXIT_LOCKED}  another reconcile pass is running"""


def version() -> str:
    """The installed package's version (the .deb installs the wheel)."""
    try:
        return metadata.version("launchplane-runner-maintainer")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's own default must not undo an option given before it.
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    common.add_argument(
        "--lanes", default=argparse.SUPPRESS, help="lanes.toml (default $LAUNCHPLANE_LANES_FILE)"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="logs on stderr"
    )
    p = argparse.ArgumentParser(
        prog="launchplane-agent",
        description="Keep self-hosted runner lanes supervised by systemd; dry-run by default.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command")
    pl = sub.add_parser("plan", parents=[common], help="dry-run: what a pass would do (default)")
    pl.add_argument("--lane", help="only this lane")
    pl.add_argument("--observation", help="replay a recorded observation (JSON), as of its time")
    pl.add_argument("--example", action="store_true", help="bundled example lanes + observation")
    ap = sub.add_parser("apply", parents=[common], help="create/adopt/reconcile one lane")
    for verb, sp in (
        ("apply", ap),
        ("restart", sub.add_parser("restart", parents=[common], help="restart a managed lane")),
        ("remove", sub.add_parser("remove", parents=[common], help="remove a managed lane")),
    ):
        sp.add_argument("--lane", required=True)
        sp.add_argument("--idempotency-key", help="required to act; a replay returns the record")
        sp.add_argument("--confirm", help=f"the words '{verb} <lane>'")
        if verb != "apply":
            sp.add_argument("--apply", action="store_true", help="act (default: dry-run)")
            sp.add_argument("--drain", action="store_true", help="even if a job is running")
            sp.add_argument(
                "--wait",
                type=_seconds,
                metavar="SECONDS",
                help="without --drain, wait this long for a running job to end (default: "
                "the lane's runner_drain_wait_seconds, 600; 0: do not wait)",
            )
    st = sub.add_parser("status", parents=[common], help="lanes: shape, GitHub, unit, last audit")
    st.add_argument("--lane")
    au = sub.add_parser("audits", parents=[common], help="list or show audit records")
    au.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    au.add_argument("record_id", nargs="?")
    au.add_argument("--lane")
    sub.add_parser("doctor", parents=[common], help="check this host; each finding with a fix")
    rc = sub.add_parser("reconcile", parents=[common], help="one pass over every lane")
    rc.add_argument(
        "--due", action="store_true", help="only the lanes that are due (what the timer runs)"
    )
    return p


def _seconds(text: str) -> int:
    if not text.isdigit() or int(text) > 86400:
        raise argparse.ArgumentTypeError("a whole number of seconds from 0 to 86400")
    return int(text)
