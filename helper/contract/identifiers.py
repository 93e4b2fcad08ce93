"""Pure checks of lane identifiers and paths, shared by the loader, the planner and the helper."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

LANE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
# GitHub: owner 1-39 chars of alphanumerics and single hyphens; repository 1-100 of [A-Za-z0-9._-].
OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
REPO_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A runner group name as a lane may declare it (passed to `config.sh --runnergroup`): letters,
# digits and ._- only, so that it is one safe argv word everywhere (docs/operations.md).
RUNNER_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Debian's adduser default NAME_REGEX, which useradd --system also accepts.
SERVICE_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# A GitHub runner label: no commas (config.sh splits on them), no whitespace at the ends.
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,255}")
# RFC 1123 host name, as `hostname` reports it.
HOST_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
UNIT_PREFIX = "launchplane-runner@"
MANAGED_LABEL = "launchplane-managed"


@dataclass(frozen=True, order=True)
class Finding:
    """One reason a lane cannot be trusted: a stable code, the field it concerns, and why."""

    code: str
    field: str
    message: str


def unit_name_for(lane_name: str) -> str:
    """The only unit name a lane may have."""
    return f"{UNIT_PREFIX}{lane_name}.service"


def canonical_repository(value: str) -> str:
    """`owner/name` from `owner/name`, `https://github.com/owner/name(.git)` or with a trailing `/`.

    Raises ValueError naming what is wrong; never guesses.
    """
    text = value.strip()
    for prefix in ("https://github.com/", "http://github.com/", "github.com/"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.removesuffix("/").removesuffix(".git")
    parts = text.split("/")
    if len(parts) != 2:
        raise ValueError(f"repository must be 'owner/name', got {value!r}")
    owner, name = parts
    if not OWNER_RE.fullmatch(owner):
        raise ValueError(f"repository owner {owner!r} is not a valid GitHub owner name")
    if not REPO_RE.fullmatch(name) or name in {".", ".."}:
        raise ValueError(f"repository name {name!r} is not a valid GitHub repository name")
    return f"{owner}/{name}"


def canonical_organization(value: str) -> str:
    """An organization login (`acme`, or `https://github.com/acme`); ValueError if it is not one."""
    text = value.strip()
    for prefix in ("https://github.com/", "http://github.com/", "github.com/"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.removesuffix("/")
    if not OWNER_RE.fullmatch(text):
        raise ValueError(f"organization must be a GitHub organization login, got {value!r}")
    return text


def runner_group_name(value: str) -> str:
    """A runner group name a lane may declare; ValueError naming the rule otherwise."""
    if not RUNNER_GROUP_RE.fullmatch(value):
        raise ValueError(
            f"runner_group {value!r} must be 1-100 letters, digits and ._- (starting with a "
            "letter or digit)"
        )
    return value


def path_findings(field: str, value: str) -> list[Finding]:
    """An absolute normal path: `..` is rejected, never resolved; `/` alone is not a root."""
    out: list[Finding] = []
    if "\x00" in value:
        return [Finding("path_traversal", field, "path contains a NUL byte")]
    if not value.startswith("/"):
        out.append(Finding("path_traversal", field, f"{value!r} is not an absolute path"))
    parts = value.split("/")
    if ".." in parts:
        out.append(Finding("path_traversal", field, f"{value!r} contains '..'"))
    if "." in parts[1:] or "//" in value or (len(value) > 1 and value.endswith("/")):
        out.append(Finding("path_traversal", field, f"{value!r} is not in normal form"))
    if str(PurePosixPath(value)) == "/":
        out.append(Finding("unsafe_root", field, "'/' alone is not a registration root"))
    return out


def lane_name_findings(field: str, value: str) -> list[Finding]:
    """Lane names are lowercase `[a-z0-9][a-z0-9._-]{0,127}` and never `.`-only."""
    if not LANE_NAME_RE.fullmatch(value) or set(value) <= {"."}:
        return [
            Finding(
                "unsafe_lane_name",
                field,
                f"{value!r} must match [a-z0-9][a-z0-9._-]{{0,127}}",
            )
        ]
    return []


def label_findings(field: str, labels: list[str]) -> list[Finding]:
    """Each label matches LABEL_RE; duplicates (case-insensitive) are refused."""
    out: list[Finding] = []
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if not LABEL_RE.fullmatch(label):
            out.append(Finding("invalid_label", f"{field}[{i}]", f"{label!r} is not a valid label"))
        if label.lower() in seen:
            out.append(Finding("invalid_label", f"{field}[{i}]", f"{label!r} is repeated"))
        seen.add(label.lower())
    return out


def is_within(child: str, root: str) -> bool:
    """Whether normal absolute path `child` lies strictly below normal absolute path `root`."""
    if ".." in child.split("/") or ".." in root.split("/"):
        return False
    return child != root and PurePosixPath(child).is_relative_to(PurePosixPath(root))
