"""The .deb for the package tier: built once by `packaging/build-deb.sh`, or reused from
`dist/` when it was built from exactly the source the tests would build from.

Which source: `$LP_DEB_SOURCE` (`head`, the default: the HEAD commit, as `make deb`; or
`worktree`, for development before committing). A `dist/<deb>.source` stamp records what a
.deb was built from (`build-deb.sh source-id`); a .deb without a matching stamp is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "dist"
BUILD_DEB = REPO / "packaging" / "build-deb.sh"
PACKAGE = "launchplane-runner-maintainer"
# The second binary package of the same build (the fleet evidence service).
EVIDENCE_PACKAGE = "launchplane-evidence"
BUILD_TIMEOUT = 900.0
# The newer build the upgrade test installs over the base one (same source, higher version).
UPGRADE_SUFFIX = "+upgradetest1"


class DebBuildError(RuntimeError):
    """build-deb.sh failed; the message carries the end of its output."""


def source_mode() -> str:
    mode = os.environ.get("LP_DEB_SOURCE", "head")
    if mode not in {"head", "worktree"}:
        raise DebBuildError(f"LP_DEB_SOURCE must be head or worktree, not {mode!r}")
    return mode


def uv_binary() -> str:
    """The uv that `make` uses: $UV (set by `uv run`), then PATH, then .tools/bin/uv."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise DebBuildError("uv not found (set UV=, or run through make)")


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV"] = uv_binary()
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("UV_PYTHON", "python3")
    return env


def _run(*args: str, timeout: float = 60.0) -> str:
    done = subprocess.run(
        ["bash", str(BUILD_DEB), *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
        env=_build_env(),
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr + done.stdout).splitlines()[-60:])
        raise DebBuildError(f"build-deb.sh {' '.join(args)} failed ({done.returncode}):\n{tail}")
    return done.stdout.strip()


def base_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def host_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def deb_path(version: str, package: str = PACKAGE) -> Path:
    return DIST / f"{package}_{version}_{host_arch()}.deb"


def source_id(mode: str) -> str:
    return _run("source-id", "--source", mode)


def is_fresh(deb: Path, sid: str) -> bool:
    stamp = deb.with_name(deb.name + ".source")
    try:
        return deb.is_file() and stamp.read_text().strip() == sid
    except OSError:
        return False


def ensure_deb(version: str) -> Path:
    """dist/<package>_<version>_<arch>.deb, built unless fresh (see the module docstring);
    the build makes both packages, and both must be fresh to be reused."""
    mode = source_mode()
    deb = deb_path(version)
    sid = source_id(mode)
    if all(is_fresh(deb_path(version, p), sid) for p in (PACKAGE, EVIDENCE_PACKAGE)):
        return deb
    out = _run("--source", mode, "--version", version, "--out", str(DIST), timeout=BUILD_TIMEOUT)
    built = Path(out.splitlines()[-1])
    if built != deb or not deb.is_file():
        raise DebBuildError(f"expected {deb}, build-deb.sh reported {built}")
    return deb


def emulator_wheels(workdir: Path) -> Path:
    """Wheels for the GitHub emulator inside the container: the runtime dependencies plus
    openapi-core (its --validate mode is imported unconditionally), every version pinned by
    uv.lock. Cached like the package's own wheels; returns the directory (with a
    requirements.txt)."""
    uv = uv_binary()
    constraints = workdir / "constraints.txt"
    requirements = workdir / "requirements.txt"
    common = ["export", "--frozen", "--no-emit-project", "--no-hashes", "--quiet"]
    for extra, path in ((["--all-groups"], constraints), (["--no-dev"], requirements)):
        subprocess.run([uv, *common, *extra, "-o", str(path)], cwd=REPO, check=True, timeout=120)
    with requirements.open("a", encoding="utf-8") as handle:
        handle.write("openapi-core\n")
    return Path(_run("wheels", str(requirements), "--", "-c", str(constraints), timeout=900))
