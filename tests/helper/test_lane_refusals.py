"""Everything the helper refuses about a lane, each with its own test; refusals touch nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helper.contract.errors import LaneRefused
from helper.contract.lanes import parse_lanes
from helper.contract.protocol import Response
from helper.resolve import resolve_lane
from tests.helper.conftest import HOST, LANE, SERVICE_UID, World, lanes_toml

MUTATING = ["install-or-update-unit", "enable-now", "restart", "stop", "remove-unit"]


def codes(response: Response) -> set[str]:
    assert not response.ok
    assert response.error is not None
    return {f.code for f in response.error.findings}


def assert_untouched(world: World) -> None:
    assert not world.dropin.exists()
    assert [c for c in world.systemd.calls if c[0] not in {"GetAll", "GetUnitFileState"}] == []


def test_unsafe_lane_names_never_reach_the_lanes_file(world: World) -> None:
    for lane in ["../cm", "CM", "cm website", "-cm", ".", "a" * 129]:
        payload = json.dumps({"version": 1, "verb": "stop", "lane": lane, "dry_run": False})
        response = world.ask_raw(payload.encode())
        assert response.error is not None
        assert response.error.code == "request_invalid"
    assert_untouched(world)


def test_unsafe_lane_names_are_refused_by_the_resolver_too() -> None:
    declared = parse_lanes(lanes_toml("/srv/r"))
    with pytest.raises(LaneRefused) as caught:
        resolve_lane(declared, "../x", HOST)
    assert caught.value.findings[0].code == "unsafe_lane_name"


def test_a_lane_not_declared_is_refused(world: World) -> None:
    assert codes(world.ask("status", lane="other-lane")) == {"lane_not_declared"}


def test_a_lane_declared_twice_is_refused(world: World) -> None:
    text = world.lanes_file.read_text()
    lane_block = text[text.index("[[lanes]]") :]
    world.lanes_file.write_text(text + "\n" + lane_block)
    assert "duplicate_lane" in codes(world.ask("status"))


def test_path_traversal_in_the_registration_root_is_refused(world: World) -> None:
    world.write_lanes(registration_root=f"{world.root}/../../etc")
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert response.error.code == "lane_refused"
    assert any("path_traversal" in f.message for f in response.error.findings)
    assert_untouched(world)


def test_a_relative_registration_root_is_refused(world: World) -> None:
    world.write_lanes(registration_root="srv/runners")
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert any("not an absolute path" in f.message for f in response.error.findings)
    assert_untouched(world)


def test_a_nul_byte_in_the_registration_root_is_refused(world: World) -> None:
    world.write_lanes(registration_root=f"{world.root}\x00/x")
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert any("NUL" in f.message for f in response.error.findings)
    assert_untouched(world)


def test_a_root_outside_the_allowlist_is_refused(world: World) -> None:
    other = world.tmp / "elsewhere"
    other.mkdir()
    world.write_lanes(registration_root=str(other))
    world.lanes_file.write_text(
        world.lanes_file.read_text().replace(
            f"allowed_registration_roots = [{json.dumps(str(other))}]",
            f"allowed_registration_roots = [{json.dumps(str(world.root))}]",
        )
    )
    assert "registration_root_not_allowed" in codes(world.ask("install-or-update-unit"))
    assert_untouched(world)


def test_a_lane_for_another_host_is_refused(world: World) -> None:
    world.host = "some-other-host"
    assert codes(world.ask("install-or-update-unit", dry_run=False)) == {"host_mismatch"}
    assert_untouched(world)


def test_a_host_that_is_not_approved_is_refused(world: World) -> None:
    world.write_lanes(host_name="rogue-host")
    assert "host_not_approved" in codes(world.ask("status"))


def test_a_service_user_outside_the_allowlist_is_refused(world: World) -> None:
    world.write_lanes(service_user="www-data")
    assert "service_user_not_allowed" in codes(world.ask("install-or-update-unit", dry_run=False))
    assert_untouched(world)


def test_a_runner_directory_owned_by_another_user_is_refused(world: World) -> None:
    world.make_lane_dir()
    os.chown(world.lane_dir, SERVICE_UID + 1, SERVICE_UID + 1)
    assert "service_user_mismatch" in codes(world.ask("install-or-update-unit", dry_run=False))
    assert_untouched(world)


def test_a_missing_service_user_is_refused(world: World) -> None:
    world.users.users.pop("launchplane-runner")
    assert codes(world.ask("install-or-update-unit", dry_run=False)) == {"service_user_missing"}
    assert_untouched(world)


def test_an_arbitrary_unit_name_in_lanes_toml_is_refused(world: World) -> None:
    world.write_lanes(systemd_unit_name="sshd.service")
    assert "unit_name_mismatch" in codes(world.ask("stop", dry_run=False))
    assert_untouched(world)


def test_a_unit_name_cannot_be_requested(world: World) -> None:
    payload = {"version": 1, "verb": "stop", "lane": LANE, "dry_run": False}
    response = world.ask_raw(json.dumps({**payload, "unit": "sshd.service"}).encode())
    assert response.error is not None
    assert response.error.code == "request_invalid"


def test_a_symlinked_registration_root_component_is_refused(world: World) -> None:
    real = world.tmp / "real"
    (real / "runners").mkdir(parents=True)
    link = world.tmp / "link"
    link.symlink_to(real)
    world.write_lanes(registration_root=f"{link}/runners")
    world.lanes_file.write_text(
        world.lanes_file.read_text().replace(str(world.root), f"{link}/runners")
    )
    assert codes(world.ask("status")) == {"symlinked_path"}
    assert_untouched(world)


def test_a_symlinked_runner_directory_is_refused(world: World) -> None:
    elsewhere = world.tmp / "elsewhere"
    elsewhere.mkdir()
    world.lane_dir.symlink_to(elsewhere)
    for verb in ["status", "install-or-update-unit"]:
        assert codes(world.ask(verb, dry_run=False)) == {"symlinked_path"}
    assert_untouched(world)


def test_a_symlinked_dropin_directory_is_refused(world: World) -> None:
    world.make_lane_dir()
    target = world.tmp / "evil"
    target.mkdir()
    (world.unit_dir / f"launchplane-runner@{LANE}.service.d").symlink_to(target)
    assert codes(world.ask("install-or-update-unit", dry_run=False)) == {"symlinked_path"}
    assert list(target.iterdir()) == []


def test_a_symlinked_runner_file_is_not_ours(world: World) -> None:
    world.make_lane_dir()
    (world.tmp / "fake.runner").write_text(json.dumps({"agentName": LANE, "gitHubUrl": "x"}))
    (world.lane_dir / ".runner").symlink_to(world.tmp / "fake.runner")
    response = world.ask("unregister-runner", dry_run=False)
    assert response.error is not None
    assert response.error.code == "not_owned"


def test_a_group_writable_registration_root_is_refused(world: World) -> None:
    world.root.chmod(0o775)
    assert "unsafe_path_mode" in codes(world.ask("install-or-update-unit", dry_run=False))
    assert_untouched(world)


def test_a_registration_root_owned_by_a_stranger_is_refused(world: World) -> None:
    os.chown(world.root, 4545, 4545)
    assert "unsafe_path_owner" in codes(world.ask("install-or-update-unit", dry_run=False))
    assert_untouched(world)


def test_a_root_that_cannot_be_written_into_a_unit_file_is_refused(tmp_path: Path) -> None:
    declared = parse_lanes(lanes_toml("/srv/run ners"))
    with pytest.raises(LaneRefused) as caught:
        resolve_lane(declared, LANE, HOST)
    assert {f.code for f in caught.value.findings} == {"unsafe_unit_value"}
