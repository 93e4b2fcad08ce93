"""`helperctl`: the admin's CLI to the root helper; dry-run unless `--apply`.

Exit codes: 0 the helper answered ok; 1 the helper refused or the action failed;
2 usage error (bad arguments, unreadable token file); 3 the helper is unreachable
(no socket, no permission, no complete answer in time, or a malformed answer).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import ValidationError

from helper.contract.client import call
from helper.contract.errors import HelperUnreachable, UsageError
from helper.contract.models import describe_validation
from helper.contract.protocol import (
    ARCHIVE_VERBS,
    DEFAULT_SOCKET,
    PROTOCOL_VERSION,
    TOKEN_VERBS,
    VERBS,
    Request,
    Response,
    encode_response,
)
from helper.contract.redact import REDACTOR

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
MAX_TOKEN_FILE = 4096
READ_TIMEOUT = 30.0
WRITE_TIMEOUT = 900.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="helperctl",
        description="Ask the launchplane root helper to act on one lane. Dry-run by default: "
        "the helper validates and reports what it would do, and touches nothing.",
        epilog="exit codes: 0 ok, 1 refused or failed, 2 usage, 3 helper unreachable. "
        "Tokens are read from a file or stdin (--token-file -), never from arguments.",
    )
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"helper socket ({DEFAULT_SOCKET})")
    p.add_argument("--json", action="store_true", help="print the helper's response as JSON")
    p.add_argument("--timeout", type=float, help="seconds to wait for the answer")
    p.add_argument("verb", choices=VERBS, help="the verb")
    p.add_argument("lane", help="the lane name as declared in lanes.toml")
    p.add_argument("--apply", action="store_true", help="act (default: dry-run)")
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="register-runner: file holding the token, '-' for stdin",
    )
    p.add_argument(
        "--archive-sha256", metavar="HEX", help="install-runner: sha256 of the cached tarball"
    )
    return p


def read_token(path: str, stdin: TextIO) -> str:
    """The token from a file or stdin: one line, surrounding whitespace removed."""
    try:
        if path == "-":
            raw = stdin.read(MAX_TOKEN_FILE + 1)
        else:
            with open(path, encoding="ascii") as handle:
                raw = handle.read(MAX_TOKEN_FILE + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the token file: {exc.__class__.__name__}") from None
    token = raw.strip()
    if token:
        REDACTOR.register(token)
    if not token or len(raw) > MAX_TOKEN_FILE or "\n" in token:
        raise UsageError("the token file must hold one token on one line")
    return token


def build_request(args: argparse.Namespace, stdin: TextIO) -> Request:
    if args.verb in TOKEN_VERBS and not args.token_file:
        raise UsageError(f"{args.verb} needs --token-file PATH (or - for stdin)")
    if args.verb not in TOKEN_VERBS and args.token_file:
        raise UsageError(f"{args.verb} takes no token")
    if args.verb in ARCHIVE_VERBS and not args.archive_sha256:
        raise UsageError(f"{args.verb} needs --archive-sha256")
    if args.verb not in ARCHIVE_VERBS and args.archive_sha256:
        raise UsageError(f"{args.verb} takes no --archive-sha256")
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "verb": args.verb,
        "lane": args.lane,
        "dry_run": not args.apply,
    }
    if args.token_file:
        fields["token"] = read_token(args.token_file, stdin)
    if args.archive_sha256:
        fields["archive_sha256"] = args.archive_sha256
    try:
        return Request.model_validate(fields)
    except ValidationError as exc:
        raise UsageError(REDACTOR.redact(describe_validation(exc, "request"))) from None


def _clean(value: object) -> str:
    """Printable for a terminal: control characters escaped."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def render_text(response: Response) -> str:
    data = json.loads(encode_response(response))
    mode = "dry-run" if data["dry_run"] else "apply"
    verb, lane = data["verb"] or "(request not read)", data["lane"] or "-"
    lines = [f"{_clean(verb)} {_clean(lane)} ({mode})"]
    error = data.get("error")
    if error:
        lines.append(f"  refused   {_clean(error['code'])}: {_clean(error['message'])}")
        lines += [
            f"  finding   {_clean(f['code'])} [{_clean(f['field'])}] {_clean(f['message'])}"
            for f in error.get("findings", [])
        ]
        return "\n".join(lines)
    result = data["result"]
    lines.append(
        f"  changed   {'yes' if result.get('changed') else 'no'}"
        + ("" if result.get("changed") or not result.get("would_change") else " (would change)")
    )
    for action in result.get("actions", []):
        detail = {k: v for k, v in action.items() if k not in {"action", "status"}}
        extras = " ".join(f"{k}={_clean(v)}" for k, v in sorted(detail.items()))
        lines.append(
            f"  {_clean(action['status']):<9} {_clean(action['action'])} {extras}".rstrip()
        )
    for key, value in sorted(result.items()):
        if key not in {"actions", "changed", "would_change"}:
            lines.append(f"  {_clean(key):<20} {_clean(value)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    try:
        request = build_request(args, stdin or sys.stdin)
    except UsageError as exc:
        print(f"helperctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    timeout = args.timeout or (READ_TIMEOUT if args.verb == "status" else WRITE_TIMEOUT)
    try:
        response = call(args.socket, request, timeout)
    except HelperUnreachable as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": {"code": exc.code, "message": str(exc)}}))
        else:
            print(f"helperctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(json.loads(encode_response(response)), indent=2, sort_keys=True))
    else:
        print(render_text(response))
    return EXIT_OK if response.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
