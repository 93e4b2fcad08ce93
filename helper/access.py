"""Who may call what: peer credentials, roles and the pure access check over (uid, verb)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import StrEnum

from helper.contract.errors import PeerRefused

_UCRED = struct.Struct("3i")
NO_ID = 0xFFFFFFFF  # what the kernel reports for "no credentials" ((uid_t)-1)


class Role(StrEnum):
    ROOT = "root"
    AGENT = "agent"


@dataclass(frozen=True)
class Access:
    """A verb's declared access: the roles that may call it."""

    name: str
    roles: frozenset[Role]


READ = Access("read", frozenset({Role.ROOT, Role.AGENT}))
WRITE = Access("write", frozenset({Role.ROOT, Role.AGENT}))
CONNECT_ROLES = frozenset({Role.ROOT, Role.AGENT})
"""A peer outside these roles is refused before a single byte of its frame is read."""


@dataclass(frozen=True)
class Peer:
    """SO_PEERCRED of a connection; `uid` None means the kernel gave no credentials."""

    uid: int | None
    gid: int | None = None
    pid: int | None = None


def _id(value: int) -> int | None:
    return None if value < 0 or value == NO_ID else value


def peer_of(sock: socket.socket) -> Peer:
    """The connecting process's credentials as the kernel recorded them at connect()."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return Peer(uid=None)
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(uid=_id(uid), gid=_id(gid), pid=pid if pid > 0 else None)


def role_of(uid: int | None, agent_uid: int | None) -> Role | None:
    """root is uid 0; the agent is the uid of policy.agent_user; anyone else has no role."""
    if uid is None:
        return None
    if uid == 0:
        return Role.ROOT
    if agent_uid is not None and uid == agent_uid:
        return Role.AGENT
    return None


def check_connect(uid: int | None, agent_uid: int | None) -> Role:
    """The check made before reading the frame: only root and the agent are served."""
    role = role_of(uid, agent_uid)
    if role is None or role not in CONNECT_ROLES:
        who = "a peer without credentials" if uid is None else f"uid {uid}"
        raise PeerRefused(f"{who} may not use the helper")
    return role


def check_access(uid: int | None, access: Access, agent_uid: int | None) -> Role:
    """Pure: whether `uid` may use a verb declared with `access`; raises PeerRefused."""
    role = check_connect(uid, agent_uid)
    if role not in access.roles:
        raise PeerRefused(f"uid {uid} ({role.value}) may not call a {access.name} verb")
    return role
