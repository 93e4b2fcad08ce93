"""lanes.toml as a whole: its problems in this project's words, and lanes that overlap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import ValidationError

from helper.contract.identifiers import is_within
from helper.contract.models import field_path


class Lane(Protocol):
    @property
    def lane_name(self) -> str: ...
    @property
    def runner_directory(self) -> str: ...


# What a setting must look like, in the words of this file's documentation (README).
FORMATS = {
    "runner_version_policy": '"latest" or a runner version such as "2.330.0"',
    "github_web_url": 'scheme and host only, e.g. "https://github.example.com"',
    "min_buildx_version": 'a version such as "0.11.0"',
}
KINDS = {
    "missing": "is missing: add it",
    "extra_forbidden": "is not a setting of lanes.toml: remove it or check its spelling",
    "tuple_type": 'must be a list, e.g. ["a", "b"]',
    "list_type": 'must be a list, e.g. ["a", "b"]',
    "string_type": "must be a string (in quotes)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "literal_error": "must be true: only managed lanes are declared",
}

# A limit of the schema, said as a rule (the limit is the schema's, never the input's value).
BOUNDS = {
    "less_than_equal": ("at most", "le"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "greater_than": ("more than", "gt"),
}


def file_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, what to do) for each problem, in this project's words rather than the
    validation library's; never the values themselves (they may hold a secret)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=True)
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    out = []
    for e in errors:
        loc = tuple(e["loc"])
        if loc[-1:] == ("systemd_unit_name",) and (*loc[:-1], "lane_name") in missing:
            continue  # derived from lane_name: only that one is reported
        where = field_path(loc, "(file)")
        kind = e["type"]
        if kind == "string_pattern_mismatch":
            why = f"must be {FORMATS.get(str(loc[-1]), 'in the documented format')}"
        elif kind in BOUNDS:
            word, key = BOUNDS[kind]
            why = f"must be {word} {(e.get('ctx') or {}).get(key, 'the documented limit')}"
        elif kind == "value_error":
            why = e["msg"].removeprefix("Value error, ")
        else:
            why = KINDS.get(kind, e["msg"])
        out.append((where, why))
    return out


def directory_overlaps(lanes: Sequence[Lane]) -> list[tuple[str, str]]:
    """Two lanes whose runner directories lie one inside the other: one lane's job could
    then reach the other's files (and its removal delete them). Refused when the file is
    read, before anything is asked of GitHub, naming both lanes. (The same directory twice
    is the same lane declared twice: `duplicate_lane`, a blocker of both.)"""
    out = []
    for j, later in enumerate(lanes):
        for earlier in lanes[:j]:
            a, b = earlier.runner_directory, later.runner_directory
            if is_within(a, b) or is_within(b, a):
                inner, outer = (earlier, later) if is_within(a, b) else (later, earlier)
                out.append(
                    (
                        f"lanes[{j}].registration_root",
                        f"runner_directory_overlap: lane {inner.lane_name!r} "
                        f"({inner.runner_directory}) lies inside the directory of lane "
                        f"{outer.lane_name!r} ({outer.runner_directory}): give each lane a "
                        "directory outside every other lane's",
                    )
                )
    return out
