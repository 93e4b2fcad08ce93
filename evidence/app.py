"""The ASGI application: the write route, the read API and the fleet page on one store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from evidence import ingest, page, reads
from evidence.auth import reader
from evidence.screen import Refused
from evidence.store import EvidenceStore
from evidence.tokens import TokenRegistry

API = "/v1/evidence/runner-lane-maintainer"
MAX_BODY = 1024 * 1024
Handler = Callable[[Request], Awaitable[Response]]


def _now() -> datetime:
    return datetime.now(UTC)


async def refused(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, Refused) else 500
    reason = exc.reason if isinstance(exc, Refused) else "internal error"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def create_app(
    store: EvidenceStore,
    registry: TokenRegistry,
    *,
    max_body: int = MAX_BODY,
    stale_after: timedelta = timedelta(hours=1),
    clock: Callable[[], datetime] = _now,
) -> Starlette:
    """One app per store; `clock` is injected so tests and the page agree on `now`."""

    async def post(request: Request) -> Response:
        return await ingest.accept(request, store, registry, max_body, clock)

    def read(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def guarded(request: Request) -> Response:
            reader(request, registry)
            return await handler(request)

        return guarded

    def on_page(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                reader(request, registry, cookie=True)
            except Refused:
                return RedirectResponse("/fleet/login", status_code=303)
            return await handler(request)

        return guarded

    async def records(request: Request) -> Response:
        return await reads.records(request, store)

    async def one(request: Request) -> Response:
        return await reads.one_record(request, store)

    async def lanes(request: Request) -> Response:
        return await reads.lanes(request, store)

    async def fleet(request: Request) -> Response:
        return await reads.fleet(request, store, clock(), stale_after)

    async def fleet_page(request: Request) -> Response:
        return await page.fleet_page(request, store, clock(), stale_after)

    async def record_page(request: Request) -> Response:
        return await page.record_page(request, store)

    async def login(request: Request) -> Response:
        return await page.login(request, registry)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route(f"{API}/audits", post, methods=["POST"]),
        Route(f"{API}/audits", read(records), methods=["GET"]),
        Route(f"{API}/audits/{{record_id}}", read(one), methods=["GET"]),
        Route(f"{API}/lanes", read(lanes), methods=["GET"]),
        Route(f"{API}/fleet", read(fleet), methods=["GET"]),
        Route("/fleet", on_page(fleet_page), methods=["GET"]),
        Route("/fleet/records/{record_id}", on_page(record_page), methods=["GET"]),
        Route("/fleet/login", login, methods=["GET", "POST"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={Refused: refused, Exception: refused})
