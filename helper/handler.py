"""One connection's request, from peer credentials to an audited, redacted Response.

Order, each step refusing before the next: audit log open -> peer uid (before reading a
byte) -> frame (size, time) -> strict request -> verb access -> lanes.toml -> the lane
(declared once, allowlisted, this host) -> the verb's own checks -> action. Verbs run one
at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

from structlog.contextvars import bound_contextvars

from helper.access import READ, Identities, Peer, check_connect
from helper.auditlog import AuditLog, redact_entry
from helper.config import HelperConfig
from helper.contract.errors import ConfigError, HelperError, InternalError, LaneRefused
from helper.contract.identifiers import Finding
from helper.contract.lanes import LanesFile
from helper.contract.logs import get_logger
from helper.contract.protocol import Request, Response, decode_request, error_body, redact_response
from helper.contract.redact import REDACTOR, Redactor
from helper.contract.systemd import SharedSystemd, SystemdPort
from helper.facts import PwdUsers, UserDb, dropin_facts
from helper.orphan import with_orphan
from helper.policy_file import TrustedLanes, UntrustedPolicy
from helper.resolve import resolve_lane
from helper.verbs import REGISTRY, authorize
from helper.verbs.base import VerbContext

SystemdConnector = Callable[[], AbstractAsyncContextManager[SystemdPort]]
ReadPayload = Callable[[], Awaitable[bytes]]


log = get_logger(__name__)


def log_event(event: str, redactor: Redactor | None = None, **fields: Any) -> None:
    """One event in the journal (the shared structlog set-up: a JSON line on stderr), masked
    with this request's own secrets like the audit line, then with the process-wide ones."""
    entry = redact_entry({"event": event, **fields}, redactor or REDACTOR)
    log.info(entry.pop("event"), **entry)


def _read_only(verb: str | None) -> bool:
    """A request for a read-only verb: its audit line is written but not fsynced one by one
    (docs/helper.md, "Audit log"); every other line, refusals of unparsed requests included,
    is fsynced before the answer."""
    spec = REGISTRY.get(verb) if verb is not None else None
    return spec is not None and spec.access is READ


def _config_refusal(exc: ConfigError) -> LaneRefused:
    findings = [Finding("config_invalid", field, message) for field, message in exc.problems]
    if isinstance(exc, UntrustedPolicy):
        return LaneRefused(f"{exc.path}: not owned by root or writable by others", findings[:50])
    return LaneRefused(f"{exc.path} is not a valid lanes file", findings[:50])


class Handler:
    """Turns one connection into one Response; owns the audit log and the verb lock."""

    def __init__(
        self,
        config: HelperConfig,
        systemd: SystemdConnector | None = None,
        users: UserDb | None = None,
        host_name: Callable[[], str] = socket.gethostname,
    ) -> None:
        self.config = config
        self._shared: SharedSystemd | None = None
        if systemd is None:  # one bus connection for the process; every read a new call
            self._shared = systemd = SharedSystemd(config.bus_address)
        self.systemd: SystemdConnector = systemd
        self.users = users or PwdUsers()
        self.host_name = host_name
        self.audit = AuditLog(config.audit_log)
        self.lanes = TrustedLanes(config.lanes_file)  # every check per call, parse per change
        self._lock: asyncio.Lock | None = None

    def close(self) -> None:
        """Drop the shared system-bus connection (the helper is exiting)."""
        if self._shared is not None:
            self._shared.close()

    def identities(self) -> Identities:
        """The uids of policy.agent_user and policy.operator_users, read fresh; nobody when
        lanes.toml is bad, and no agent when its user does not exist (root is always served)."""
        try:
            return self._identities_in(self.lanes.load())
        except ConfigError:
            return Identities()

    def _identities_in(self, declared: LanesFile) -> Identities:
        policy = declared.policy
        agent = self.users.lookup(policy.agent_user)
        operators = (self.users.lookup(name) for name in policy.operator_users)
        return Identities(
            agent_uid=agent[0] if agent else None,
            operator_uids=frozenset(found[0] for found in operators if found),
        )

    async def handle(self, peer: Peer, read_payload: ReadPayload) -> Response:
        """The answer to one connection, redacted with this request's own secrets only (a
        token a peer sends masks nothing in any other request's answer or log line). Every
        event logged while serving it carries its `request_id` (bound, not passed)."""
        with bound_contextvars(request_id=secrets.token_hex(6)):
            return await self._handle(peer, read_payload)

    async def _handle(self, peer: Peer, read_payload: ReadPayload) -> Response:
        started = time.monotonic()
        redactor = Redactor()
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "peer_uid": peer.uid,
            "peer_gid": peer.gid,
            "peer_pid": peer.pid,
            "verb": None,
            "lane": None,
            "dry_run": None,
            "unit_hash_before": None,
            "unit_hash_after": None,
        }
        try:
            audit = self.audit.open()
        except HelperError as exc:
            log_event("audit_unavailable", error=str(exc), peer_uid=peer.uid)
            return Response(ok=False, verb=None, lane=None, dry_run=True, error=error_body(exc))
        try:
            request, result = await self._serve(peer, read_payload, entry, redactor)
            response = Response(
                ok=True,
                verb=request.verb,
                lane=request.lane,
                dry_run=request.dry_run,
                result=result,
            )
        except HelperError as exc:
            response = self._refusal(exc, entry)
        except Exception as exc:
            log_event("internal_error", redactor, trace=traceback.format_exc(), peer_uid=peer.uid)
            response = self._refusal(InternalError(exc.__class__.__name__), entry)
        finally:
            entry["duration_ms"] = round((time.monotonic() - started) * 1000)
        entry.update(
            ok=response.ok,
            code=response.error.code if response.error else "ok",
            reason=response.error.reason if response.error else None,
            message=response.error.message[:500] if response.error else None,
            changed=response.result.get("changed"),
        )
        audit.write(entry, redactor, durable=not _read_only(entry["verb"]))
        log_event("request", redactor, **entry)
        return redact_response(response, redactor)

    def _refusal(self, exc: HelperError, entry: dict[str, Any]) -> Response:
        """The error response; verb, lane and mode as far as the request was understood."""
        return Response(
            ok=False,
            verb=entry["verb"],
            lane=entry["lane"],
            dry_run=entry["dry_run"] is not False,
            error=error_body(exc),
        )

    async def _serve(
        self,
        peer: Peer,
        read_payload: ReadPayload,
        entry: dict[str, Any],
        redactor: Redactor,
    ) -> tuple[Request, dict[str, Any]]:
        loaded: LanesFile | ConfigError  # read once: who may connect, then what is declared
        try:
            loaded = self.lanes.load()
        except ConfigError as exc:
            loaded = exc
        ids = Identities() if isinstance(loaded, ConfigError) else self._identities_in(loaded)
        check_connect(peer.uid, ids)  # before a single byte of the frame is read
        request = decode_request(await read_payload(), redactor)
        entry.update(verb=request.verb, lane=request.lane, dry_run=request.dry_run)
        authorize(peer.uid, request.verb, ids, dry_run=request.dry_run)
        if isinstance(loaded, ConfigError):
            raise _config_refusal(loaded) from None
        declared = loaded
        declared = with_orphan(
            declared,
            request.verb,
            request.lane,
            unit_dir=self.config.unit_dir,
            host_name=self.host_name(),
            lookup=self.users.lookup,
        )
        lane = resolve_lane(declared, request.lane, self.host_name())
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            entry["unit_hash_before"] = self._hash_on_disk(lane.lane_name, declared)
            try:
                async with self.systemd() as systemd:
                    ctx = VerbContext(
                        request,
                        lane,
                        declared.policy,
                        self.config,
                        systemd,
                        self.users,
                        tuple(declared.lanes),
                        declared.github.proxy,
                    )
                    result = await REGISTRY[request.verb].run(ctx)
            finally:
                entry["unit_hash_after"] = self._hash_on_disk(lane.lane_name, declared)
        return request, result

    def _hash_on_disk(self, lane_name: str, declared: Any) -> str | None:
        lane = declared.lanes_named(lane_name)[0]
        with contextlib.suppress(HelperError, OSError, ValueError):
            return dropin_facts(lane, self.config.unit_dir).hash_on_disk
        return None
