"""Talk to the installed evidence service from inside a container: HTTP through its own
venv's httpx (the container has no curl), the token on stdin (never in argv), and the CLI
run as the service user."""

from __future__ import annotations

import json
from typing import Any

from tests.sandbox import Sandbox

EVIDENCE_VENV = "/usr/lib/launchplane-evidence/venv"
SERVICE = "launchplane-evidence.service"
USER = "launchplane-evidence"
BASE = "http://127.0.0.1:8471"
API = "/v1/evidence/runner-lane-maintainer"

_CLIENT = """\
import sys, httpx
method, url, key, body_file = sys.argv[1:5]
token = sys.stdin.readline().strip()
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
if key:
    headers["Idempotency-Key"] = key
body = open(body_file, "rb").read() if body_file else None
answer = httpx.request(method, url, content=body, headers=headers, timeout=30)
print(answer.status_code)
print(answer.text)
"""


def request(
    box: Sandbox, method: str, path: str, *, token: str = "", key: str = "", body_file: str = ""
) -> tuple[int, Any]:
    """(status, JSON body or text) of METHOD BASE+PATH inside BOX."""
    done = box.exec(
        f"{EVIDENCE_VENV}/bin/python",
        "-c",
        _CLIENT,
        method,
        BASE + path,
        key,
        body_file,
        input=token + "\n",
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    code, _, text = done.stdout.partition("\n")
    try:
        return int(code), json.loads(text)
    except json.JSONDecodeError:
        return int(code), text


def mint(box: Sandbox, *args: str) -> str:
    """A token minted by the CLI as the service user (as the docs say); its secret."""
    done = box.exec("runuser", "-u", USER, "--", "launchplane-evidence", "tokens", "create", *args)
    return done.stdout.strip()


def listening(box: Sandbox, port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on PORT."""
    found = set()
    for line in box.sh("cat /proc/net/tcp /proc/net/tcp6").stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            address, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port:
                found.add(address)
    return found
