"""Every test starts with structlog's defaults: a CLI run configures logging for the whole
process (silenced without -v), and that must not leak into the next test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
