"""Every test starts with the project's logging set-up (JSON lines on stderr): a CLI run
configures logging for the whole process (silenced without -v), and that must not leak into
the next test. Not structlog's own defaults, which print to stdout, where the CLIs' output goes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helper.contract import logs


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    yield
    logs.configure(json_output=True)
