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
    OPERATOR = "operator"
    """A user named in `policy.operator_users`: may look (status, dry runs), never act."""


@dataclass(frozen=True)
class Access:
    """A verb's declared access: the roles that may call it, and the roles that may call it
    only as a dry run (which changes nothing)."""

    name: str
    roles: frozenset[Role]
    dry_run_roles: frozenset[Role] = frozenset()


READ = Access("read", frozenset({Role.ROOT, Role.AGENT, Role.OPERATOR}))
"""Read-only verbs (`status`): root, the agent and the operators."""
WRITE = Access("write", frozenset({Role.ROOT, Role.AGENT}), frozenset({Role.OPERATOR}))
"""Verbs that change the host: root (helperctl) and the agent; operators only dry runs."""
CONNECT_ROLES = frozenset({Role.ROOT, Role.AGENT, Role.OPERATOR})
"""A peer outside these roles is refused before a single byte of its frame is read."""


@dataclass(frozen=True)
class Identities:
    """Who holds which role on this host, resolved fresh from lanes.toml for a connection:
    the uid of `policy.agent_user` and those of `policy.operator_users` (None/empty when
    lanes.toml or the users cannot be read: then only root is served)."""

    agent_uid: int | None = None
    operator_uids: frozenset[int] = frozenset()


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


def role_of(uid: int | None, ids: Identities) -> Role | None:
    """root is uid 0; the agent is the uid of policy.agent_user; an operator one of
    policy.operator_users (the agent's uid is never an operator); anyone else has no role."""
    if uid is None:
        return None
    if uid == 0:
        return Role.ROOT
    if ids.agent_uid is not None and uid == ids.agent_uid:
        return Role.AGENT
    if uid in ids.operator_uids:
        return Role.OPERATOR
    return None


def check_connect(uid: int | None, ids: Identities) -> Role:
    """The check made before reading the frame: only root, the agent and operators are served."""
    role = role_of(uid, ids)
    if role is None or role not in CONNECT_ROLES:
        who = "a peer without credentials" if uid is None else f"uid {uid}"
        raise PeerRefused(f"{who} may not use the helper")
    return role


def check_access(uid: int | None, access: Access, ids: Identities, *, dry_run: bool) -> Role:
    """Pure: whether `uid` may use a verb declared with `access` (as a dry run or for real);
    raises PeerRefused."""
    role = check_connect(uid, ids)
    if role in access.roles or (dry_run and role in access.dry_run_roles):
        return role
    mode = " except as a dry run" if role in access.dry_run_roles else ""
    raise PeerRefused(f"uid {uid} ({role.value}) may not call a {access.name} verb{mode}")
