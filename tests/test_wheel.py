"""What ships is only the product: the built wheel holds no test, fake, emulator or bench file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCT = re.compile(r"(^|/)(tests?|bench|devtools)/|fake|emulator|sandbox|demo", re.IGNORECASE)
PRODUCT_PACKAGES = ("agent/", "helper/", "evidence/")


def find_uv() -> str:
    """The uv the Makefile uses: $UV, the bootstrapped .tools/bin/uv, or one on PATH."""
    for candidate in (os.environ.get("UV"), str(ROOT / ".tools/bin/uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("no uv to build the wheel with (run `make .venv/.synced` first)")


def not_product(names: list[str]) -> list[str]:
    return [name for name in names if NOT_PRODUCT.search(name)]


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("tests/fakes/systemd.py", True),
        ("helper/systemd_fake.py", True),
        ("tests/emulators/github_api.py", True),
        ("bench/report.py", True),
        ("helper/contract/systemd.py", False),
        ("agent/reconcile.py", False),
    ],
)
def test_the_check_recognises_what_is_not_product(name: str, flagged: bool) -> None:
    assert bool(not_product([name])) is flagged


def test_the_wheel_holds_only_the_product(tmp_path: Path) -> None:
    subprocess.run(
        [find_uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [name for name in names if ".dist-info/" not in name]
    assert any(name == "helper/server.py" for name in code)
    assert any(name == "agent/cli.py" for name in code)
    assert not_product(names) == []
    assert [name for name in code if not name.startswith(PRODUCT_PACKAGES)] == []
