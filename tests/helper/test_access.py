"""Who may call what: the verb-by-peer table, and the uid check made before any frame byte."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from helper.access import (
    READ,
    WRITE,
    Identities,
    Peer,
    Role,
    check_connect,
    peer_of,
    role_of,
)
from helper.contract.errors import PeerRefused, UnknownVerb
from helper.contract.protocol import VERBS
from helper.verbs import REGISTRY, authorize
from tests.helper.conftest import AGENT_UID, OTHER_UID, World

OPERATOR_UID = 4545
IDS = Identities(agent_uid=AGENT_UID, operator_uids=frozenset({OPERATOR_UID}))
PEERS: dict[str, int | None] = {
    "root": 0,
    "agent": AGENT_UID,
    "operator": OPERATOR_UID,
    "other": OTHER_UID,
    "none": None,
}
MUTATING = [verb for verb in VERBS if verb != "status"]
# Written out, not derived from the code under test (DESIGN: the agent and root act; the
# issue: "an operator group allowed `status` and dry runs only"). (verb, mode) -> peers.
ALLOWED = (
    {("status", mode): {"root", "agent", "operator"} for mode in ("dry_run", "for_real")}
    | {(verb, "dry_run"): {"root", "agent", "operator"} for verb in MUTATING}
    | {(verb, "for_real"): {"root", "agent"} for verb in MUTATING}
)
DECLARED = {verb: (READ if verb == "status" else WRITE) for verb in VERBS}


def test_every_wire_verb_has_exactly_one_module() -> None:
    assert set(REGISTRY) == set(VERBS)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.access is DECLARED[name]


def test_the_table_covers_every_verb_in_both_modes() -> None:
    assert set(ALLOWED) == {(verb, mode) for verb in VERBS for mode in ("dry_run", "for_real")}


@pytest.mark.parametrize("mode", ["dry_run", "for_real"])
@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("peer", PEERS)
def test_verb_by_peer(verb: str, peer: str, mode: str) -> None:
    uid = PEERS[peer]
    dry_run = mode == "dry_run"
    if peer in ALLOWED[(verb, mode)]:
        assert authorize(uid, verb, IDS, dry_run=dry_run) is Role(peer)
    else:
        with pytest.raises(PeerRefused):
            authorize(uid, verb, IDS, dry_run=dry_run)


def test_the_access_kinds_differ() -> None:
    assert READ.roles - WRITE.roles == {Role.OPERATOR}
    assert WRITE.dry_run_roles == {Role.OPERATOR}


def test_without_an_agent_user_only_root_is_served() -> None:
    assert authorize(0, "status", Identities()) is Role.ROOT
    with pytest.raises(PeerRefused):
        authorize(AGENT_UID, "status", Identities())


def test_unknown_verbs_are_refused_by_the_access_check_too() -> None:
    with pytest.raises(UnknownVerb):
        authorize(0, "shell", IDS)


def test_roles() -> None:
    assert role_of(0, IDS) is Role.ROOT
    assert role_of(AGENT_UID, IDS) is Role.AGENT
    assert role_of(OPERATOR_UID, IDS) is Role.OPERATOR
    assert role_of(OTHER_UID, IDS) is None
    assert role_of(None, IDS) is None
    # the agent's own uid named as an operator too stays the agent
    assert role_of(AGENT_UID, Identities(AGENT_UID, frozenset({AGENT_UID}))) is Role.AGENT
    with pytest.raises(PeerRefused, match="without credentials"):
        check_connect(None, IDS)


def test_peer_of_reads_so_peercred_and_treats_failure_as_no_credentials() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        peer = peer_of(a)
        assert peer == Peer(uid=os.getuid(), gid=os.getgid(), pid=os.getpid())
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp:
        assert peer_of(udp).uid is None


@pytest.mark.parametrize("peer", ["other", "none"])
def test_refused_peers_are_answered_without_reading_their_frame(world: World, peer: str) -> None:
    async def read() -> bytes:
        raise AssertionError("the frame of a refused peer must not be read")

    response = asyncio.run(world.handler().handle(Peer(uid=PEERS[peer], pid=9), read))
    assert not response.ok
    assert response.error is not None
    assert response.error.code == "peer_refused"
    line = world.audit_lines()[-1]
    assert line["code"] == "peer_refused"
    assert line["peer_uid"] == PEERS[peer]


def test_the_agent_uid_comes_from_lanes_toml_policy(world: World) -> None:
    assert world.ask("status", uid=AGENT_UID).ok
    world.lanes_file.write_text(
        world.lanes_file.read_text().replace(
            "[policy]\n", '[policy]\nagent_user = "someone-else"\n'
        )
    )
    response = world.ask("status", uid=AGENT_UID)
    assert response.error is not None
    assert response.error.code == "peer_refused"
    assert world.ask("status", uid=0).ok


def test_a_broken_lanes_file_leaves_only_root(world: World) -> None:
    world.lanes_file.write_text("not toml [")
    refused = world.ask("status", uid=AGENT_UID)
    assert refused.error is not None
    assert refused.error.code == "peer_refused"
    root = world.ask("status", uid=0)
    assert root.error is not None
    assert root.error.code == "lane_refused"
    assert root.error.findings[0].code == "config_invalid"


def test_an_operator_looks_but_never_acts(world: World) -> None:
    """Over the handler: `status` and a dry run are served to a user of policy.operator_users;
    the same verb for real is refused before lanes.toml is even read, and nothing changes."""
    world.users.users["alice"] = (OPERATOR_UID, OPERATOR_UID)
    world.lanes_file.write_text(
        world.lanes_file.read_text().replace("[policy]\n", '[policy]\noperator_users = ["alice"]\n')
    )
    assert world.ask("status", uid=OPERATOR_UID).ok
    planned = world.ask("install-or-update-unit", uid=OPERATOR_UID, dry_run=True)
    assert planned.ok, planned.error
    assert planned.result["would_change"] is True
    refused = world.ask("install-or-update-unit", uid=OPERATOR_UID, dry_run=False)
    assert refused.error is not None
    assert refused.error.code == "peer_refused"
    assert "except as a dry run" in refused.error.message
    assert list(world.unit_dir.iterdir()) == []  # nothing written
    assert world.audit_lines()[-1]["code"] == "peer_refused"
    assert world.ask("install-or-update-unit", uid=AGENT_UID, dry_run=False).ok


def test_a_user_not_named_as_operator_is_refused(world: World) -> None:
    world.users.users["alice"] = (OPERATOR_UID, OPERATOR_UID)  # exists, but not an operator
    refused = world.ask("status", uid=OPERATOR_UID)
    assert refused.error is not None
    assert refused.error.code == "peer_refused"
