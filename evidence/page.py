"""The fleet page: server-rendered HTML, hosts x lanes, and one record with its eight gates."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agent.contracts import Gate
from evidence.auth import COOKIE
from evidence.reads import lane_page
from evidence.screen import Refused
from evidence.store import EvidenceStore, LaneState
from evidence.summary import age_text, proven, summary_json
from evidence.tokens import READ_ACTION, TokenRegistry

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4em .7em;text-align:left}
.proven{background:#dff5e1}.unproven{background:#fbe3e3}.stale{font-style:italic}
.passed{color:#1b6e2a}.failed{color:#a61b1b}.missing{color:#777}
"""


def _doc(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; form-action 'self'",
        },
    )


def login_form(message: str = "") -> HTMLResponse:
    note = f"<p class='failed'>{escape(message)}</p>" if message else ""
    return _doc(
        "Launchplane evidence: sign in",
        f"{note}<form method='post' action='/fleet/login'><label>Read token "
        "<input type='password' name='token' id='token' autocomplete='off'></label> "
        "<button type='submit' id='sign-in'>Sign in</button></form>",
    )


async def login(request: Request, registry: TokenRegistry) -> Response:
    """GET: the form. POST: check the token has the read scope, keep it in an HttpOnly cookie."""
    if request.method == "GET":
        return login_form()
    body = (await request.body())[:4096].decode("utf-8", "replace")
    token = (parse_qs(body).get("token") or [""])[0].strip()
    entry = registry.authenticate(token) if token else None
    if entry is None or not entry.allows(READ_ACTION):
        return login_form("That is not a live token with the read scope.")
    response = RedirectResponse("/fleet", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/fleet",
        secure=request.url.scheme == "https",
    )
    return response


def _cell(state: LaneState | None, now: datetime, stale_after: timedelta) -> str:
    if state is None:
        return "<td class='none'>-</td>"
    s = summary_json(state, now, stale_after)
    shown = state.completed if proven(state) and state.completed else state.latest
    word = "proven" if s["proven"] else "not proven"
    extra = (
        f"<br>failed gate: {escape(str(s['last_failed_gate']))}" if s["last_failed_gate"] else ""
    )
    stale = " stale" if s["stale"] else ""
    return (
        f"<td class='lane {'proven' if s['proven'] else 'unproven'}{stale}' "
        f"data-host='{escape(state.host)}' data-lane='{escape(state.lane)}'>"
        f"<a href='/fleet/records/{quote(shown.record_id, safe='')}'>{word}</a>"
        + (
            f"<br>last proof: {age_text(s['last_proof_age_seconds'])} ago"
            if s["last_proof_age_seconds"] is not None
            else "<br>no proof yet"
        )
        + f"{extra}{' (stale)' if s['stale'] else ''}</td>"
    )


async def fleet_page(
    request: Request, store: EvidenceStore, now: datetime, stale_after: timedelta
) -> Response:
    states, next_cursor = await run_in_threadpool(lane_page, request, store)
    hosts = sorted({s.host for s in states})
    lanes = sorted({s.lane for s in states})
    by_key = {(s.host, s.lane): s for s in states}
    head = "".join(f"<th>{escape(lane)}</th>" for lane in lanes)
    rows = "".join(
        f"<tr><th>{escape(h)}</th>"
        + "".join(_cell(by_key.get((h, lane)), now, stale_after) for lane in lanes)
        + "</tr>"
        for h in hosts
    )
    proven_count = sum(1 for s in states if proven(s))
    paged = next_cursor is not None or "cursor" in request.query_params
    more = (
        f"<p><a id='next' href='/fleet?cursor={quote(next_cursor, safe='')}'>next lanes</a></p>"
        if next_cursor
        else ""
    )
    return _doc(
        "Launchplane fleet",
        f"<p id='counts'>{proven_count} of {len(states)} lanes proven, "
        f"{len(hosts)} hosts{' on this page' if paged else ''}, "
        f"at {escape(now.isoformat(timespec='seconds'))}</p>"
        f"<table id='fleet'><tr><th>host \\ lane</th>{head}</tr>{rows}</table>{more}",
    )


async def record_page(request: Request, store: EvidenceStore) -> Response:
    stored = await run_in_threadpool(store.get, request.path_params["record_id"])
    if stored is None:
        raise Refused(404, "no such record")
    record = stored.record
    results = {g.gate: g for g in record.gates}

    def verdict(g: Gate) -> str:
        return ("passed" if results[g].passed else "failed") if g in results else "missing"

    gates = "".join(
        f"<li class='gate {verdict(g)}'"
        f" data-gate='{g.value}'><b>{g.value}</b>: "
        + (
            f"{'passed' if results[g].passed else 'failed'} ({escape(results[g].detail)})"
            if g in results
            else "not checked"
        )
        + "</li>"
        for g in Gate
    )
    facts = [
        ("record", record.record_id),
        ("status", record.status),
        ("host", stored.host),
        ("lane", record.lane_name),
        ("repository", stored.repository),
        ("created", record.created_at.isoformat()),
        ("stored", stored.stored_at.isoformat()),
        ("plan", f"{record.plan.status} {record.plan.action.value}"),
        ("failed gate", record.failed_gate.value if record.failed_gate else ""),
        ("error", record.error or ""),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    return _doc(
        f"{record.lane_name} on {stored.host}",
        f"<p><a href='/fleet'>fleet</a></p><table id='record'>{table}</table>"
        f"<h2>The eight gates</h2><ol id='gates'>{gates}</ol>",
    )
