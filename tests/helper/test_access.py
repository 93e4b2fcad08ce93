"""Who may call what: the verb-by-peer table, and the uid check made before any frame byte."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from helper.access import READ, WRITE, Peer, Role, check_connect, peer_of, role_of
from helper.contract.errors import PeerRefused, UnknownVerb
from helper.contract.protocol import VERBS
from helper.verbs import REGISTRY, authorize
from tests.helper.conftest import AGENT_UID, OTHER_UID, World

PEERS: dict[str, int | None] = {"root": 0, "agent": AGENT_UID, "other": OTHER_UID, "none": None}
# Written out, not derived from the code under test: every verb is served to root (helperctl)
# and to the agent's uid, and to nobody else.
ALLOWED = {verb: {"root", "agent"} for verb in VERBS}
DECLARED = {verb: (READ if verb == "status" else WRITE) for verb in VERBS}


def test_every_wire_verb_has_exactly_one_module() -> None:
    assert set(REGISTRY) == set(VERBS)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.access is DECLARED[name]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("peer", PEERS)
def test_verb_by_peer(verb: str, peer: str) -> None:
    uid = PEERS[peer]
    if peer in ALLOWED[verb]:
        assert authorize(uid, verb, AGENT_UID) in {Role.ROOT, Role.AGENT}
    else:
        with pytest.raises(PeerRefused):
            authorize(uid, verb, AGENT_UID)


def test_without_an_agent_user_only_root_is_served() -> None:
    assert authorize(0, "status", None) is Role.ROOT
    with pytest.raises(PeerRefused):
        authorize(AGENT_UID, "status", None)


def test_unknown_verbs_are_refused_by_the_access_check_too() -> None:
    with pytest.raises(UnknownVerb):
        authorize(0, "shell", AGENT_UID)


def test_roles() -> None:
    assert role_of(0, AGENT_UID) is Role.ROOT
    assert role_of(AGENT_UID, AGENT_UID) is Role.AGENT
    assert role_of(OTHER_UID, AGENT_UID) is None
    assert role_of(None, AGENT_UID) is None
    with pytest.raises(PeerRefused, match="without credentials"):
        check_connect(None, AGENT_UID)


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
