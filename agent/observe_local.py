"""Observe a lane's runner directory and service user on this host, without following links."""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
from collections.abc import Callable
from pathlib import Path

from agent.contracts import LocalRunnerDirectory, RunnerFile
from helper.contract.lanes import RunnerLaneMaintainerDesiredState

RUNNER_FILE_LIMIT = 64 * 1024
ARCHIVE_RECORD = ".launchplane-archive"
SHA256_LINE = re.compile(rb"[0-9a-f]{64}\n?")


def service_user_uid(
    name: str, getpwnam: Callable[[str], pwd.struct_passwd] = pwd.getpwnam
) -> int | None:
    try:
        return getpwnam(name).pw_uid
    except KeyError:
        return None


def parse_runner_file(data: bytes) -> RunnerFile:
    """`.runner` is camelCase JSON, written by the runner with a UTF-8 BOM."""
    doc = json.loads(data.decode("utf-8-sig"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    name, url, agent_id = doc.get("agentName"), doc.get("gitHubUrl"), doc.get("agentId")
    if not isinstance(name, str) or not isinstance(url, str):
        raise ValueError("agentName or gitHubUrl missing")
    if agent_id is not None and not isinstance(agent_id, int):
        raise ValueError("agentId is not an integer")
    return RunnerFile(agent_name=name, git_hub_url=url, agent_id=agent_id)


def read_runner_file(directory: str) -> tuple[RunnerFile | None, str | None]:
    try:
        fd = os.open(f"{directory}/.runner", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(RUNNER_FILE_LIMIT + 1)
    if len(data) > RUNNER_FILE_LIMIT:
        return None, "larger than 64 KiB"
    try:
        return parse_runner_file(data), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"unparseable: {type(exc).__name__}"


def read_archive_record(directory: str) -> str | None:
    """The sha256 in `.launchplane-archive` (written by the helper's extract step), or None.
    A job may rewrite it, but only to a digest whose archive the agent itself cached."""
    try:
        fd = os.open(f"{directory}/{ARCHIVE_RECORD}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(66)
    return data.strip().decode() if SHA256_LINE.fullmatch(data) else None


def observe_directory(desired: RunnerLaneMaintainerDesiredState) -> LocalRunnerDirectory:
    """The lane's runner directory as it is now: lstat only, `.runner` read with O_NOFOLLOW."""
    path = desired.runner_directory
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return LocalRunnerDirectory(path=path, exists=False)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return LocalRunnerDirectory(
            path=path,
            exists=True,
            is_directory=False,
            is_symlink=stat.S_ISLNK(st.st_mode),
            owner_uid=st.st_uid,
        )
    runner_file, error = read_runner_file(path)
    try:
        names = sorted(os.listdir(path))
    except OSError:
        names = []
    return LocalRunnerDirectory(
        path=path,
        exists=True,
        is_directory=True,
        owner_uid=st.st_uid,
        runner_file=runner_file,
        runner_file_error=error,
        has_run_script=Path(path, "run.sh").is_file(),
        stale_migrated_files=tuple(n for n in names if n.endswith("_migrated")),
        archive_sha256=read_archive_record(path),
    )
