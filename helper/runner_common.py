"""What the runner-user steps share (stdlib only): exit codes, argument syntax, the no-follow
directory flags and how a step speaks to the journal. Loaded by `runner_steps.py` and
`runner_remove.py`, which run as `python -I -S` and find it from their own path."""

from __future__ import annotations

import os
import re

EXIT_USAGE = 64
EXIT_UNSAFE = 66

LANE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
PATH_RE = re.compile(r"/[A-Za-z0-9._/@%+-]{1,4000}")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def say(message: str) -> None:
    print(f"launchplane-step: {message}", flush=True)
