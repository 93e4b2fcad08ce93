"""The GitHub emulator as a real HTTP server on loopback, in-process or from the command line:

    python -m tests.emulators.github_api --port 8080 --state-file /var/lib/emu/state.json \
        --repo owner/name --pat-file /run/emu/pat --runner-tarball dist/actions-runner-...tar.gz

REST API at `http://HOST:PORT/api/v3` (GitHub Enterprise Server style, so actions/runner's own
URL rules find it from `config.sh --url http://HOST:PORT/owner/name`); web side at
`http://HOST:PORT`; private control routes under `/_emulator/` (see `control.py`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulators.clock import EmulatorClock
from tests.emulators.faults import Fault
from tests.emulators.github_app import EmuRequest, GitHubApp
from tests.emulators.github_state import Settings, State
from tests.emulators.openapi import SpecValidator

log = logging.getLogger("tests.emulators.github_api")
MAX_BODY = 1 << 20
RUNNER_VERSION = "2.329.0"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    app: GitHubApp  # set on the subclass made per server

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("host") or "127.0.0.1"
        request = EmuRequest(
            method=self.command,
            path=parts.path,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base=f"http://{host}",
        )
        response = self.app.handle(request)
        if response.delay:
            time.sleep(response.delay)
        if response.disconnect:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Request line only (method, path, status): never headers, so never a token.
        log.debug("%s %s", self.address_string(), format % args)


class GitHubEmulator:
    """A GitHub for tests: `with GitHubEmulator(validate=True) as gh: gh.api_url ...`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        validate: bool = False,
        state_file: Path | None = None,
        runner_tarball: Path | None = None,
        runner_version: str = RUNNER_VERSION,
        clock: EmulatorClock | None = None,
        settings: Settings | None = None,
        validator: SpecValidator | None = None,
    ) -> None:
        self.clock = clock or EmulatorClock()
        self.state = State(self.clock, settings=settings, state_file=state_file)
        self.app = GitHubApp(
            self.state,
            validator=(validator or SpecValidator()) if validate else None,
            runner_tarball=runner_tarball,
            runner_version=runner_version,
        )
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._host = host
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> GitHubEmulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state.save()

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def web_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.web_url}/api/v3"

    # --- conveniences for in-process tests ------------------------------------------------

    @property
    def validation_errors(self) -> list[str]:
        return list(self.app.validation_errors)

    def fault(self, kind: str, **options: Any) -> Fault:
        return self.app.faults.add(Fault(kind, **options))

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        return self.app.requests(operation)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.emulators.github_api", description="GitHub REST API emulator"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    p.add_argument("--state-file", type=Path, help="load and persist the world here")
    p.add_argument("--repo", action="append", default=[], help="owner/name (repeatable)")
    p.add_argument("--org", action="append", default=[], help="an organization (repeatable)")
    p.add_argument(
        "--runner-group", action="append", default=[], help="ORG/NAME: a runner group (repeatable)"
    )
    p.add_argument("--pat-file", type=Path, help="file holding a token the emulator accepts")
    p.add_argument("--runner-tarball", type=Path, help="served by the downloads endpoint")
    p.add_argument("--runner-version", default=RUNNER_VERSION)
    p.add_argument("--validate", action="store_true", help="check traffic against OpenAPI")
    p.add_argument("--session-timeout", type=float, default=None)
    p.add_argument("--app-id", help="accept JWTs of this GitHub App id ...")
    p.add_argument("--app-public-key", type=Path, help="... signed by this key's private half")
    p.add_argument("--installation-id", type=int, default=1)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.session_timeout is not None:
        settings.session_timeout = args.session_timeout
    emulator = GitHubEmulator(
        host=args.host,
        port=args.port,
        validate=args.validate,
        state_file=args.state_file,
        runner_tarball=args.runner_tarball,
        runner_version=args.runner_version,
        settings=settings,
    )
    for repository in args.repo:
        emulator.state.add_repository(repository)
    for organization in args.org:
        emulator.state.add_organization(organization)
    for group in args.runner_group:
        organization, _, name = group.partition("/")
        emulator.state.add_organization(organization)
        emulator.state.add_runner_group(organization, name)
    if args.pat_file is not None:
        emulator.state.add_pat(args.pat_file.read_text(encoding="utf-8").strip())
    if args.app_id:
        if args.app_public_key is None:
            print("--app-id needs --app-public-key", file=sys.stderr)
            return 2
        emulator.state.add_app(
            args.app_id, args.app_public_key.read_text(encoding="utf-8"), args.installation_id
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    print(f"api_url={emulator.api_url}", flush=True)
    print(f"web_url={emulator.web_url}", flush=True)
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
