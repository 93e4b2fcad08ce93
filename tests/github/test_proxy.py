"""`[github] proxy`: every request of the adapter goes through the configured proxy (a real
forward proxy on loopback here), and none does when it is unset."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.github.conftest import REPO, MakeClient


class ForwardProxy(BaseHTTPRequestHandler):
    """A minimal HTTP forward proxy: absolute-form requests are sent on and recorded."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in {"host", "proxy-connection"}
        }
        with httpx.Client(trust_env=False) as upstream:
            answer = upstream.get(self.path, headers=headers)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in {
                "transfer-encoding",
                "content-length",
                "connection",
                "content-encoding",
            }:
                self.send_header(key, value)
        body = answer.content
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recording", (ForwardProxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_requests_go_through_the_configured_proxy(
    make_client: MakeClient, proxy: tuple[str, list[str]]
) -> None:
    url, seen = proxy
    client = make_client(proxy=url)
    assert client.list_runners(REPO) == []
    assert seen
    assert all(p.endswith(f"/repos/{REPO}/actions/runners?per_page=100") for p in seen)


def test_without_a_proxy_nothing_goes_through_one(
    make_client: MakeClient, proxy: tuple[str, list[str]]
) -> None:
    _, seen = proxy
    assert make_client().list_runners(REPO) == []
    assert seen == []
