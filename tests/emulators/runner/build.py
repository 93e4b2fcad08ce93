"""Builds the runner emulator's release archive, `actions-runner-linux-x64-<version>.tar.gz`,
and its `.sha256` (sha256sum format). Deterministic: the same sources give the same bytes.

    python -m tests.emulators.runner.build --out DIR
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from tests.emulators.runner.listener import VERSION

SOURCES = Path(__file__).parent
MTIME = 1_700_000_000  # fixed, so that rebuilding never changes the checksum
FILES: tuple[tuple[str, str, int], ...] = (
    # (name in the archive, source file, mode)
    ("config.sh", "config.sh", 0o755),
    ("run.sh", "run.sh", 0o755),
    ("run-helper.sh.template", "run-helper.sh.template", 0o755),
    ("env.sh", "env.sh", 0o755),
    ("safe_sleep.sh", "safe_sleep.sh", 0o755),
    ("bin/Runner.Listener", "listener.py", 0o755),
)
README = (
    "This is the launchplane actions/runner EMULATOR, built by the test suite.\n"
    "It talks only to the launchplane GitHub emulator. See docs/github.md.\n"
)


def archive_name(version: str = VERSION) -> str:
    return f"actions-runner-linux-x64-{version}.tar.gz"


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(f"./{name}")
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _source(source: str, version: str) -> bytes:
    """A source file as the release of `version` carries it: the listener reports `version`."""
    data = (SOURCES / source).read_bytes()
    if source == "listener.py" and version != VERSION:
        line = f'VERSION = "{VERSION}"\n'.encode()
        if data.count(line) != 1:
            raise ValueError("listener.py has no single VERSION line to set")
        data = data.replace(line, f'VERSION = "{version}"\n'.encode())
    return data


def build(out: Path, version: str = VERSION) -> tuple[Path, str]:
    """Write the archive and `<archive>.sha256` into `out`; returns (archive, sha256 hex).
    Another `version` gives the same emulator reporting that version (a newer release)."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"not a runner version: {version!r}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "bin", None, 0o755)
        for name, source, mode in FILES:
            _add(tar, name, _source(source, version), mode)
        _add(tar, "bin/EMULATOR.txt", README.encode(), 0o644)
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(buffer.getvalue())
    data = packed.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    archive = out / archive_name(version)
    archive.write_bytes(data)
    (out / f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n", encoding="utf-8")
    return archive, digest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.runner.build")
    parser.add_argument("--out", type=Path, required=True, help="directory for the archive")
    args = parser.parse_args(argv)
    archive, digest = build(args.out)
    print(f"{digest}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
