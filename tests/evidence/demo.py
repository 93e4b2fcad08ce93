"""`make demo-evidence`: the agent's real dry-run pass (README's demo: GitHub emulator, the
example lanes.toml) spools its record and delivers it to the evidence service on the
embedded filesystem store; then the read API's fleet summary. `--serve` keeps the service
up for a browser at /fleet."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx

from agent.evidence import TOKEN_FILE
from agent.settings import load_settings
from agent.wiring import deliver_evidence
from evidence.app import API, create_app
from evidence.fs_store import FilesystemEvidenceStore
from evidence.serving import serve_in_thread
from evidence.tokens import TokenRegistry
from tests.emulators import demo

HOST = "chris-testing"  # the example lane's host


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--serve", action="store_true", help="keep the service up until Ctrl-C")
    args = p.parse_args(argv)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lp-evidence-demo-")))
        store = FilesystemEvidenceStore(tmp / "store")
        stack.callback(store.close)
        registry = TokenRegistry(tmp / "tokens.json")
        write, _ = registry.create("write", (HOST,), (demo.REPOSITORY,), "demo host")
        read, _ = registry.create("read", note="demo reader")
        url = stack.enter_context(serve_in_thread(create_app(store, registry)))
        print(f"# evidence service at {url}, filesystem store in {tmp}")
        os.environ["LAUNCHPLANE_EVIDENCE_URL"] = url

        def deliver() -> None:
            spool = load_settings().state_dir / "spool"
            print(f"\n# delivering the spool ({len(list(spool.glob('*.json')))} record(s))")
            deliver_evidence(load_settings())
            print(f"# left in the spool: {len(list(spool.glob('*.json')))}")

        code = demo.main(extra_credentials={TOKEN_FILE: write}, after_pass=deliver)
        reply = httpx.get(f"{url}{API}/fleet", headers={"Authorization": f"Bearer {read}"})
        print(f"\n# GET {API}/fleet (a read token)\n{json.dumps(reply.json(), indent=1)}")
        print(f"# the service holds {store.count()} record(s); the agent demo exited {code}")
        if args.serve:
            print(f"# fleet page: {url}/fleet  (sign in with this read token: {read})")
            print("# Ctrl-C stops the service")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0 if reply.status_code == 200 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
