"""lanes.toml parsed once per change (issue 17): the helper reuses its parse only while the
file is the same file, unchanged; every ownership and mode check still runs on every call."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helper.policy_file import TrustedLanes, UntrustedPolicy
from tests.planner import factories as f

TEXT = f.POLICY_TOML + f.LANE_TOML
OTHER_PRODUCT = TEXT.replace('product = "cm-website"', 'product = "cm-websitf"')


def lanes_file(tmp_path: Path, text: str = TEXT) -> Path:
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the directory must be trusted, not open
    path = tmp_path / "lanes.toml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def settled(path: Path) -> TrustedLanes:
    """A cache that trusts the timestamps at once (racy_ns=0), after one parse of `path`."""
    cache = TrustedLanes(path, owner=os.getuid(), racy_ns=0)
    cache.load()
    time.sleep(0.02)  # past one tick of the kernel's coarse file clock, so edits show in it
    return cache


def product(cache: TrustedLanes) -> str:
    return cache.load().lanes[0].product


def test_an_unchanged_file_is_parsed_once(tmp_path: Path) -> None:
    cache = settled(lanes_file(tmp_path))
    for _ in range(3):
        assert product(cache) == "cm-website"
    assert cache.parses == 1


def test_a_same_size_edit_is_seen_at_the_next_call(tmp_path: Path) -> None:
    path = lanes_file(tmp_path)
    cache = settled(path)
    assert len(OTHER_PRODUCT) == len(TEXT)
    with open(path, "r+") as fh:  # in place: same inode, same size
        fh.write(OTHER_PRODUCT)
    assert product(cache) == "cm-websitf"
    assert cache.parses == 2


def test_an_edit_with_its_mtime_put_back_is_seen(tmp_path: Path) -> None:
    path = lanes_file(tmp_path)
    cache = settled(path)
    before = path.stat()
    path.write_text(OTHER_PRODUCT)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    assert product(cache) == "cm-websitf"


def test_a_replaced_file_is_seen_at_the_next_call(tmp_path: Path) -> None:
    path = lanes_file(tmp_path)
    cache = settled(path)
    new = tmp_path / "lanes.toml.new"
    new.write_text(OTHER_PRODUCT)
    new.chmod(0o644)
    os.rename(new, path)
    assert product(cache) == "cm-websitf"


def test_a_fresh_edit_is_never_trusted_to_the_timestamps(tmp_path: Path) -> None:
    """With the real window, a file changed just now is parsed on every call, so two same-size
    writes inside one tick of the file clock cannot hide the second."""
    path = lanes_file(tmp_path)
    cache = TrustedLanes(path, owner=os.getuid())
    assert product(cache) == "cm-website"
    path.write_text(OTHER_PRODUCT)
    assert product(cache) == "cm-websitf"
    path.write_text(TEXT)
    assert product(cache) == "cm-website"
    assert cache.parses == 3


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o664])
def test_a_cached_file_turned_writable_by_others_is_refused_at_the_next_call(
    tmp_path: Path, mode: int
) -> None:
    path = lanes_file(tmp_path)
    cache = settled(path)
    assert product(cache) == "cm-website"
    path.chmod(mode)
    with pytest.raises(UntrustedPolicy):
        cache.load()
    path.chmod(0o644)
    assert product(cache) == "cm-website"


def test_a_cached_file_whose_directory_turns_writable_is_refused(tmp_path: Path) -> None:
    cache = settled(lanes_file(tmp_path))
    os.chmod(tmp_path, 0o777)  # noqa: S103 - the attack under test
    with pytest.raises(UntrustedPolicy):
        cache.load()


def test_a_cached_file_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    path = lanes_file(tmp_path)
    cache = settled(path)
    os.rename(path, tmp_path / "real.toml")
    path.symlink_to(tmp_path / "real.toml")
    with pytest.raises(UntrustedPolicy):
        cache.load()


def test_a_cached_file_given_to_another_owner_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("chown needs root")
    path = lanes_file(tmp_path)
    cache = TrustedLanes(path, racy_ns=0)  # owner: root
    cache.load()
    os.chown(path, 4242, 4242)
    with pytest.raises(UntrustedPolicy):
        cache.load()
