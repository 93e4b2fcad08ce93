"""`[github] proxy` reaches the runner too: the helper renders it into the lane's drop-in
(`https_proxy` & co., which actions/runner reads) and gives it to `config.sh`; the agent's
expected drop-in hash and an orphan's rebuild agree with it."""

from __future__ import annotations

from helper.contract.dropin import render_dropin
from helper.contract.lanes import load_lanes
from helper.contract.orphans import lane_from_dropin
from tests.helper.conftest import CANARY, HOST, World

PROXY = "http://proxy.example:3128"


def with_proxy(world: World) -> None:
    world.lanes_file.write_text(world.lanes_file.read_text() + f'\n[github]\nproxy = "{PROXY}"\n')


def test_the_drop_in_and_the_registration_get_the_proxy(world: World) -> None:
    with_proxy(world)
    world.make_lane_dir()
    response = world.ask("register-runner", dry_run=False, token=CANARY)
    assert response.ok, response.error
    register = next(spec for spec, _ in world.systemd.transients if "register" in spec.name)
    assert f"https_proxy={PROXY}" in register.environment
    assert f"HTTPS_PROXY={PROXY}" in register.environment
    assert world.ask("install-or-update-unit", dry_run=False).ok
    text = world.dropin.read_text()
    assert f"\nEnvironment=https_proxy={PROXY}\n" in text
    declared = load_lanes(world.lanes_file)
    assert text == render_dropin(declared.lanes[0], declared.github.proxy)  # the agent's view
    rebuilt = lane_from_dropin(text, HOST, declared.policy)  # an orphan with a proxy
    assert rebuilt is not None
    assert rebuilt.runner_directory == declared.lanes[0].runner_directory


def test_without_a_proxy_nothing_proxy_is_written(world: World) -> None:
    world.make_lane_dir()
    assert world.ask("register-runner", dry_run=False, token=CANARY).ok
    register = next(spec for spec, _ in world.systemd.transients if "register" in spec.name)
    assert not [e for e in register.environment if "proxy" in e.split("=")[0].lower()]
    assert world.ask("install-or-update-unit", dry_run=False).ok
    assert "_proxy=" not in world.dropin.read_text().lower()
