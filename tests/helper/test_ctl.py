"""helperctl against a real helper socket: dry-run by default, tokens never in argv or
output, documented exit codes, and golden JSON."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from helper.ctl import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, main
from tests.helper.conftest import CANARY, LANE, World, serve_while

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def run_ctl(
    world: World, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    async def client(name: str) -> int:
        return await asyncio.to_thread(main, ["--socket", "\0" + name, *args], io.StringIO(stdin))

    code, _ = serve_while(world, client)
    out = capsys.readouterr()
    return int(code), out.out, out.err


def normalised(text: str, world: World) -> Any:
    """Paths (and hashes of files that contain them) depend on the test's tmp dir."""
    text = re.sub(r'"[0-9a-f]{64}"', '"<sha256>"', text.replace(str(world.tmp), "<tmp>"))
    return json.loads(text)


def check_golden(name: str, data: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; review and rerun with UPDATE_GOLDEN=1"


def test_dry_run_is_the_default(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.make_lane_dir()
    code, out, _ = run_ctl(world, capsys, "install-or-update-unit", LANE)
    assert code == EXIT_OK
    assert "(dry-run)" in out
    assert "planned   write_dropin" in out
    assert not world.dropin.exists()
    code, out, _ = run_ctl(world, capsys, "install-or-update-unit", LANE, "--apply")
    assert code == EXIT_OK
    assert "(apply)" in out
    assert world.dropin.exists()


def test_json_output_golden_for_a_dry_run(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.make_lane_dir()
    code, out, _ = run_ctl(world, capsys, "--json", "install-or-update-unit", LANE)
    assert code == EXIT_OK
    check_golden("helperctl-install-or-update-unit-dry-run.json", normalised(out, world))


def test_json_output_golden_for_a_refusal(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_ctl(world, capsys, "--json", "restart", "no-such-lane", "--apply")
    assert code == EXIT_FAILED
    check_golden("helperctl-refused.json", normalised(out, world))


def test_a_token_from_a_file_never_shows(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world.make_lane_dir()
    token_file = tmp_path / "token"
    token_file.write_text(CANARY + "\n")
    code, out, err = run_ctl(
        world, capsys, "register-runner", LANE, "--token-file", str(token_file), "--apply"
    )
    assert code == EXIT_OK, out + err
    assert CANARY not in out + err
    assert world.systemd.transients[0][1] == CANARY.encode() + b"\n"


def test_a_token_from_stdin(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.make_lane_dir()
    code, out, err = run_ctl(
        world, capsys, "--json", "register-runner", LANE, "--token-file", "-", stdin=CANARY
    )
    assert code == EXIT_OK
    assert CANARY not in out + err
    assert json.loads(out)["dry_run"] is True


@pytest.mark.parametrize(
    "args",
    [
        ["register-runner", LANE],
        ["status", LANE, "--token-file", "-"],
        ["install-runner", LANE],
        ["status", LANE, "--archive-sha256", "ab" * 32],
        ["install-runner", LANE, "--archive-sha256", "AB" * 32],
        ["shell", LANE],
        ["status", "../etc"],
        ["status"],
        ["register-runner", LANE, "--token-file", "/nonexistent/token"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--socket", "/nonexistent.sock", *args], io.StringIO("")) == EXIT_USAGE
    assert CANARY not in capsys.readouterr().err


def test_an_empty_or_multi_line_token_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for stdin in ["", "\n", f"{CANARY}\nsecond line\n"]:
        args = ["--socket", "/nonexistent.sock", "register-runner", LANE, "--token-file", "-"]
        assert main(args, io.StringIO(stdin)) == EXIT_USAGE
    assert CANARY not in capsys.readouterr().err


def test_an_unreachable_helper_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--socket", "/nonexistent.sock", "status", LANE]) == EXIT_UNREACHABLE
    assert "cannot reach" in capsys.readouterr().err
    assert main(["--socket", "/nonexistent.sock", "--json", "status", LANE]) == EXIT_UNREACHABLE
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "unreachable"


def test_a_refusal_exits_1_with_its_findings(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.host = "elsewhere"
    code, out, _ = run_ctl(world, capsys, "stop", LANE, "--apply")
    assert code == EXIT_FAILED
    assert "refused   lane_refused" in out
    assert "finding   host_mismatch [host_name]" in out


def test_control_characters_are_escaped_for_terminals(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.make_lane_dir()
    world.write_runner_file("evil\x1b[2Jname")
    code, out, _ = run_ctl(world, capsys, "status", LANE)
    assert code == EXIT_OK
    assert "\x1b" not in out
