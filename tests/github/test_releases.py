"""Runner releases end to end over real sockets: the emulator publishes a newer runner (its
listener reports that version), the downloads API offers only the newest, every release stays
downloadable, and the agent's release watch asks hourly, or at once when told to."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from agent.github.client import GitHubClient
from agent.github.payloads import select_download
from agent.releases import SIGHTINGS, ReleaseWatch
from tests.agent.fakes import NOW
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.runner.build import build
from tests.emulators.runner.listener import VERSION
from tests.github.conftest import REPO


def listener_version(archive: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile("./bin/Runner.Listener")
        assert member is not None
        source = member.read().decode()
    (line,) = [x for x in source.splitlines() if x.startswith("VERSION = ")]
    return line.split('"')[1]


def publish(emulator: GitHubEmulator, version: str) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - loopback emulator
        f"{emulator.web_url}/_emulator/releases",
        data=json.dumps({"version": version}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:  # noqa: S310 - loopback emulator
        result: dict[str, str] = json.load(answer)
    return result


def test_a_build_of_another_version_reports_that_version(tmp_path: Path) -> None:
    archive, _ = build(tmp_path, "2.330.0")
    assert archive.name == "actions-runner-linux-x64-2.330.0.tar.gz"
    assert listener_version(archive.read_bytes()) == "2.330.0"
    default, _ = build(tmp_path / "d")
    assert listener_version(default.read_bytes()) == VERSION
    with pytest.raises(ValueError, match="not a runner version"):
        build(tmp_path / "x", "2.330")


def test_a_published_release_is_the_newest_offered_and_older_ones_stay(
    emulator: GitHubEmulator, client: GitHubClient, tmp_path: Path
) -> None:
    old = select_download(client.runner_downloads(REPO))
    published = publish(emulator, "2.330.0")
    new = select_download(client.runner_downloads(REPO))
    assert new.filename == "actions-runner-linux-x64-2.330.0.tar.gz"
    assert new.sha256_checksum == published["sha256"]
    assert new.sha256_checksum != old.sha256_checksum
    path = client.download_runner(new, tmp_path / "new")  # sha256-verified by the adapter
    assert listener_version(path.read_bytes()) == "2.330.0"
    kept = client.download_runner(old, tmp_path / "old")  # the older release is still there
    assert listener_version(kept.read_bytes()) == VERSION


def test_the_release_watch_asks_hourly_or_at_once_when_fresh(
    emulator: GitHubEmulator, client: GitHubClient, tmp_path: Path
) -> None:
    clock = emulator.clock.now
    watch = ReleaseWatch(client, tmp_path, clock, "x64")
    first = watch.versions(REPO, None, "2.328.0")
    assert (first.installed, first.installed_source, first.latest) == ("2.328.0", "github", VERSION)
    assert first.latest_seen_at == clock()
    publish(emulator, "2.330.0")
    emulator.clock.advance(120)
    assert watch.versions(REPO, None, None).latest == VERSION  # checked less than an hour ago
    # a new process (a new pass) told the lane looks refused asks at once
    fresh = ReleaseWatch(client, tmp_path, clock, "x64").versions(REPO, None, None, fresh=True)
    assert fresh.latest == "2.330.0"
    assert fresh.latest_seen_at == clock()
    emulator.clock.advance(3600)
    later = ReleaseWatch(client, tmp_path, clock, "x64").versions(REPO, None, None)
    assert later.latest_seen_at == fresh.latest_seen_at  # first seen, not last seen
    assert json.loads((tmp_path / SIGHTINGS).read_text())["latest"] == {REPO: "2.330.0"}


def test_the_installed_version_comes_from_the_agents_own_archive_record(tmp_path: Path) -> None:
    watch = ReleaseWatch(None, tmp_path, lambda: NOW, "x64")  # type: ignore[arg-type]
    sha = "b" * 64
    (tmp_path / "runners").mkdir()
    (tmp_path / "runners" / f"{sha}.version").write_text("2.329.0\n")
    assert watch.archive_version(sha) == "2.329.0"
    assert watch.archive_version("c" * 64) is None
    assert watch.archive_version("../../etc/passwd") is None
    (tmp_path / "runners" / f"{'d' * 64}.version").write_text("2.329.0; rm -rf /\n")
    assert watch.archive_version("d" * 64) is None
