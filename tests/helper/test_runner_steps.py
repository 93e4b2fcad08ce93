"""The runner-user step program, run as a real process: fixed argv, token via stdin -> env."""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from helper import runner_common, runner_steps
from helper.config import STEPS_PROGRAM
from helper.runner_archive import UnsafeArchive, safe_members
from tests.helper.conftest import CANARY, FAKE_CONFIG_SH, fake_config_tarball, runner_tarball

URL = "http://127.0.0.1:9/o/r"


def step(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-I", "-S", STEPS_PROGRAM, *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def runner_dir(tmp_path: Path) -> Path:
    d = tmp_path / "lane"
    d.mkdir()
    (d / "config.sh").write_text(FAKE_CONFIG_SH)
    (d / "config.sh").chmod(0o755)
    return d


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }


def stdlib_closure(program: Path) -> set[str]:
    """The top-level modules a step script loads, following its `helper.runner_*` siblings
    (the only package modules it may load)."""
    seen: set[str] = set()
    todo, tops = [program], set()
    while todo:
        names = _imports(todo.pop())
        for name in names:
            if name.startswith("helper.") and name not in seen:
                assert name.startswith("helper.runner_"), name
                seen.add(name)
                todo.append(program.with_name(name.removeprefix("helper.") + ".py"))
            elif not name.startswith("helper."):
                tops.add(name.split(".")[0])
    return tops - {"__future__"}


@pytest.mark.parametrize("script", ["runner_steps.py", "runner_remove.py"])
def test_the_step_programs_use_the_standard_library_only(script: str) -> None:
    """Each step and the siblings it loads (the archive check, the shared syntax) import
    only the stdlib."""
    tops = stdlib_closure(Path(STEPS_PROGRAM).with_name(script))
    assert tops <= set(sys.stdlib_module_names)
    assert {"os", "sys"} <= tops


@pytest.fixture
def archive(tmp_path: Path) -> tuple[str, str]:
    """The cached pristine runner: (path, sha256)."""
    data = fake_config_tarball()
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / f"{sha}.tar.gz"
    path.write_bytes(data)
    return str(path), sha


def register(
    runner_dir: Path, archive: tuple[str, str], *values: str, token: bytes = CANARY.encode()
) -> subprocess.CompletedProcess[bytes]:
    args = values or (URL, "lane-1", "a,b")
    return step("register", str(runner_dir), *args, *archive, stdin=token + b"\n")


def test_register_runs_a_pristine_config_sh_with_the_fixed_argv(
    runner_dir: Path, archive: tuple[str, str]
) -> None:
    done = register(runner_dir, archive)
    assert done.returncode == 0, done.stdout + done.stderr
    log = (runner_dir / "config-calls.log").read_text()
    ran_from, argv = log.splitlines()[:2]
    assert not ran_from.startswith(f"ran-from:{runner_dir}")  # a private copy, not the lane's
    assert argv == (
        f"argv:--unattended --url {URL} --name lane-1 --labels a,b --work _work --replace "
        "--disableupdate"
    )
    assert "env-token:yes" in log
    assert CANARY not in log
    assert CANARY.encode() not in done.stdout + done.stderr
    assert b"lane-1" in (runner_dir / ".runner").read_bytes()  # the registration moved in


def test_rewritten_runner_code_in_the_lane_never_sees_the_token(
    runner_dir: Path, archive: tuple[str, str], tmp_path: Path
) -> None:
    """Issue 13 item 1: a job rewrote config.sh and bin/Runner.Listener in its lane."""
    loot = tmp_path / "loot"
    evil = f'#!/bin/sh\necho "$ACTIONS_RUNNER_INPUT_TOKEN" >> {loot}\n'
    (runner_dir / "config.sh").write_text(evil)
    (runner_dir / "bin").mkdir()
    (runner_dir / "bin" / "Runner.Listener").write_text(evil)
    (runner_dir / "bin" / "Runner.Listener").chmod(0o755)
    done = register(runner_dir, archive)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not loot.exists()
    assert (runner_dir / ".runner").exists()


def test_register_refuses_an_archive_that_is_not_the_named_one(
    runner_dir: Path, archive: tuple[str, str], tmp_path: Path
) -> None:
    path, sha = archive
    Path(path).write_bytes(runner_tarball({"config.sh": b"#!/bin/sh\nenv > /tmp/x\n"}))
    assert register(runner_dir, (path, sha)).returncode == runner_steps.EXIT_CHECKSUM
    (tmp_path / "link").symlink_to(tmp_path / "cache")
    linked = str(tmp_path / "link" / Path(path).name)
    assert register(runner_dir, (linked, sha)).returncode == runner_common.EXIT_UNSAFE
    assert not (runner_dir / "config-calls.log").exists()
    assert not (runner_dir / ".runner").exists()


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["http://x/o/r;rm", "lane-1", "a"], CANARY),
        (["http://127.0.0.1:9/o/r", "Lane", "a"], CANARY),
        ([URL, "lane-1", "a b"], CANARY),
        ([URL, "lane-1", "a,,b"], CANARY),
        ([URL, "lane-1", "a"], ""),
        ([URL, "lane-1", "a"], "short"),
        ([URL, "lane-1", "a"], "has space in it 12345"),
    ],
)
def test_register_refuses_bad_values(
    runner_dir: Path, archive: tuple[str, str], args: list[str], stdin: str
) -> None:
    done = register(runner_dir, archive, *args, token=stdin.encode())
    assert done.returncode == runner_common.EXIT_USAGE
    assert not (runner_dir / "config-calls.log").exists()


def test_register_refuses_an_existing_registration(
    runner_dir: Path, archive: tuple[str, str]
) -> None:
    (runner_dir / ".runner").write_text("{}")
    assert register(runner_dir, archive).returncode == runner_steps.EXIT_STATE
    assert not (runner_dir / "config-calls.log").exists()


def test_unregister_forgets_the_registration_without_running_runner_code(
    runner_dir: Path, tmp_path: Path
) -> None:
    state = (".runner", ".credentials", ".credentials_rsaparams", ".env", ".path")
    (runner_dir / ".launchplane-archive").write_text("ab" * 32 + "\n")
    for name in state:
        (runner_dir / name).write_text("{}")
    (tmp_path / "keep").write_text("x")
    (runner_dir / ".env").unlink()
    (runner_dir / ".env").symlink_to(tmp_path / "keep")  # removed, never followed
    done = step("unregister", str(runner_dir), stdin=CANARY.encode())
    assert done.returncode == 0
    assert not (runner_dir / "config-calls.log").exists()  # config.sh did not run
    assert not any(os.path.lexists(runner_dir / name) for name in state)
    assert (tmp_path / "keep").read_text() == "x"
    assert (runner_dir / "config.sh").exists()
    assert (runner_dir / ".launchplane-archive").exists()  # the next register needs it


def test_unknown_steps_are_refused() -> None:
    assert step("shell", "-c", "id").returncode == runner_common.EXIT_USAGE
    assert step().returncode == runner_common.EXIT_USAGE


def test_extract_verifies_the_bytes_it_extracts(tmp_path: Path) -> None:
    data = runner_tarball({"run.sh": b"#!/bin/sh\n"})
    wrong = hashlib.sha256(b"other").hexdigest()
    assert step("extract", str(tmp_path), "lane", wrong, stdin=data).returncode == 65
    assert list((tmp_path / "lane").iterdir()) == []  # the staging copy is gone too
    right = hashlib.sha256(data).hexdigest()
    assert step("extract", str(tmp_path), "lane", right, stdin=data).returncode == 0
    assert (tmp_path / "lane" / "run.sh").read_bytes() == b"#!/bin/sh\n"


def test_extract_refuses_a_symlinked_lane_directory(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "lane").symlink_to(tmp_path / "elsewhere")
    data = runner_tarball({"run.sh": b"x"})
    done = step("extract", str(tmp_path), "lane", hashlib.sha256(data).hexdigest(), stdin=data)
    assert done.returncode == runner_common.EXIT_UNSAFE
    assert list((tmp_path / "elsewhere").iterdir()) == []


def member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def test_safe_members_normalises_names_and_modes() -> None:
    out = safe_members(
        [
            member(".", tarfile.DIRTYPE),
            member("./bin", tarfile.DIRTYPE, mode=0o777),
            member("./bin/x", mode=0o6777),
            member("bin/ro", mode=0o444),
            member("bin/l", tarfile.SYMTYPE, "../run.sh"),
            member("h", tarfile.LNKTYPE, "./bin/x"),
        ]
    )
    by_name = {m.name: m for m in out}
    assert set(by_name) == {"bin", "bin/x", "bin/ro", "bin/l", "h"}
    assert by_name["bin"].mode == 0o755
    assert by_name["bin/x"].mode == 0o755
    assert by_name["bin/ro"].mode == 0o644
    assert by_name["h"].linkname == "bin/x"
    assert all(m.uid == 0 and m.uname == "" for m in out)


@pytest.mark.parametrize(
    "members",
    [
        [member("../x")],
        [member("/abs")],
        [member("a/../../x")],
        [member("a\x00b")],
        [member(".runner")],
        [member(".credentials_rsaparams")],
        [member("l", tarfile.SYMTYPE, "/etc")],
        [member("l", tarfile.SYMTYPE, "../../x")],
        [member("a/l", tarfile.SYMTYPE, "../..")],
        [member("l", tarfile.SYMTYPE, "."), member("l/x")],
        [member("h", tarfile.LNKTYPE, "missing")],
        [member("h", tarfile.LNKTYPE, "../etc/passwd")],
        [member("d", tarfile.BLKTYPE)],
        [member("f", tarfile.FIFOTYPE)],
    ],
)
def test_safe_members_refuses(members: list[tarfile.TarInfo]) -> None:
    with pytest.raises(UnsafeArchive):
        safe_members(members)


def test_register_an_organization_runner_into_its_group(
    runner_dir: Path, archive: tuple[str, str]
) -> None:
    """An organization URL (one path segment) and the group as `--runnergroup`, last."""
    org_url = "http://127.0.0.1:9/acme"
    done = step(
        "register", str(runner_dir), org_url, "lane-1", "a,b", *archive, "build",
        stdin=CANARY.encode() + b"\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    argv = (runner_dir / "config-calls.log").read_text().splitlines()[1]
    assert argv == (
        f"argv:--unattended --url {org_url} --name lane-1 --labels a,b --work _work --replace "
        "--disableupdate --runnergroup build"
    )


@pytest.mark.parametrize("group", ["two words", "-x", "../etc", "a;b", "", "x" * 101])
def test_register_refuses_a_bad_runner_group(
    runner_dir: Path, archive: tuple[str, str], group: str
) -> None:
    done = step(
        "register", str(runner_dir), URL, "lane-1", "a", *archive, group,
        stdin=CANARY.encode() + b"\n",
    )  # fmt: skip
    assert done.returncode == runner_common.EXIT_USAGE
    assert not (runner_dir / "config-calls.log").exists()
