"""The per-lane drop-in: a pure renderer, its content hash and the ownership-mark parser."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from helper.contract.identifiers import Finding, unit_name_for
from helper.contract.lanes import RunnerLaneMaintainerDesiredState
from helper.contract.site import proxy_url

DROPIN_NAME = "50-lane.conf"
UNIT_DIR = "/etc/systemd/system"
LANE_MARK = "X-Launchplane-Lane="
HASH_MARK = "X-Launchplane-Hash="
HASH_RE = re.compile(r"[0-9a-f]{64}")
# Characters a path may have to be written into a unit file unquoted: no whitespace, quotes,
# backslashes, `$` (variable expansion in ExecStart=) or control characters. `%` is allowed
# and escaped as `%%` (specifier syntax).
UNIT_PATH_RE = re.compile(r"/[A-Za-z0-9._/@%+-]{1,4000}")
UNIT_WORD_RE = re.compile(r"[A-Za-z0-9._/@%+-]{1,256}")
# What a job must not read: the GitHub credential and lanes.toml, the agent's state, cache
# and runtime files, the helper's audit log and socket ("-": absent is fine).
HIDDEN_PATHS = " ".join(
    f"-{path}"
    for path in (
        "/etc/launchplane",
        "/var/lib/launchplane-agent",
        "/var/cache/launchplane-agent",
        "/run/launchplane-agent",
        "/var/log/launchplane",
        "/run/launchplane",
    )
)


def dropin_dir_name(lane_name: str) -> str:
    return f"{unit_name_for(lane_name)}.d"


def escape_unit_value(value: str) -> str:
    """Escape a validated value for a unit file: specifiers (`%`) doubled; newlines refused."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValueError("a unit file value cannot contain a newline or NUL")
    return value.replace("%", "%%")


def unit_value_findings(lane: RunnerLaneMaintainerDesiredState) -> list[Finding]:
    """Whether the lane's values can be rendered into a unit file without quoting."""
    out: list[Finding] = []
    if not UNIT_PATH_RE.fullmatch(lane.runner_directory):
        out.append(
            Finding(
                "unsafe_unit_value",
                "registration_root",
                "only letters, digits and ._/@%+- can be written into a unit file",
            )
        )
    for field, value in ((lane.scope_kind, lane.scope), ("service_user", lane.service_user)):
        if not UNIT_WORD_RE.fullmatch(value):
            out.append(Finding("unsafe_unit_value", field, "cannot be written into a unit file"))
    return out


def _lines(text: str) -> list[str]:
    """Lines as systemd sees them (split on newline only), each keeping its newline."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def content_hash(text: str) -> str:
    """sha256 of the text with every `X-Launchplane-Hash=` line removed."""
    body = "".join(line for line in _lines(text) if not line.startswith(HASH_MARK))
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ServiceIdentity:
    """What systemd must report for the lane's unit once its drop-in is loaded: the one
    definition the renderer writes and the completion gates compare against."""

    user: str
    group: str
    working_directory: str
    exec_start: tuple[str, ...]


def expected_service(lane: RunnerLaneMaintainerDesiredState) -> ServiceIdentity:
    directory = lane.runner_directory
    return ServiceIdentity(
        user=lane.service_user,
        group=lane.service_user,
        working_directory=directory,
        exec_start=(f"{directory}/run.sh",),
    )


def lane_dropin_path(lane: RunnerLaneMaintainerDesiredState, unit_dir: str = UNIT_DIR) -> str:
    """Where the lane's own drop-in lives (the only drop-in the helper writes)."""
    return f"{unit_dir}/{dropin_dir_name(lane.lane_name)}/{DROPIN_NAME}"


PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")


def proxy_environment(proxy: str | None) -> tuple[str, ...]:
    """`lanes.toml [github] proxy` as the environment the runner reads (actions/runner ADR
    263: `https_proxy`, `http_proxy`; some tools want the upper-case names)."""
    if not proxy:
        return ()
    url = proxy_url(proxy)  # refuses a user or password: no secret reaches a unit file
    return tuple(f"{name}={url}" for name in PROXY_VARIABLES)


def render_dropin(lane: RunnerLaneMaintainerDesiredState, proxy: str | None = None) -> str:
    """The drop-in for one validated lane (and lanes.toml's `[github] proxy`, which the runner
    needs to reach GitHub); deterministic; it has no input for secrets."""
    problems = unit_value_findings(lane)
    if problems:
        raise ValueError(f"lane cannot be rendered: {problems[0].field}: {problems[0].message}")
    service = expected_service(lane)
    directory = escape_unit_value(service.working_directory)
    lines = [
        f"# Rendered by launchplane-helper for lane {lane.lane_name}. Do not edit: an edited",
        "# drop-in loses its ownership marks and the helper will refuse to touch the lane.",
        "[Unit]",
        f"Description=launchplane runner lane {lane.lane_name} ({escape_unit_value(lane.scope)})",
        "",
        "[Service]",
        f"User={escape_unit_value(service.user)}",
        f"Group={escape_unit_value(service.group)}",
        f"WorkingDirectory={directory}",
        f"Environment=HOME={directory}",
        *(f"Environment={escape_unit_value(v)}" for v in proxy_environment(proxy)),
        "ExecStart=",
        f"ExecStart={' '.join(escape_unit_value(arg) for arg in service.exec_start)}",
        f"ReadWritePaths={directory}",
        "# Lane isolation: the registration root is an empty tmpfs with only this lane's",
        "# directory bound back in (lanes may share a service user), and the agent's and the",
        "# helper's files are not there at all.",
        f"TemporaryFileSystem={escape_unit_value(lane.registration_root)}:ro",
        f"BindPaths={directory}",
        f"InaccessiblePaths={HIDDEN_PATHS}",
        f"{LANE_MARK}{lane.lane_name}",
    ]
    body = "\n".join(lines) + "\n"
    return f"{body}{HASH_MARK}{content_hash(body)}\n"


@dataclass(frozen=True)
class DropinMarks:
    """What a drop-in's marks say. `owned_by(lane)` is the only ownership test."""

    lane: str | None
    hash: str | None
    hash_valid: bool
    content_hash: str

    def owned_by(self, lane_name: str) -> bool:
        return self.lane == lane_name and self.hash_valid


def _single(lines: list[str], prefix: str) -> str | None:
    values = [line[len(prefix) :].strip() for line in lines if line.startswith(prefix)]
    return values[0] if len(values) == 1 else None


def read_dropin_marks(text: str) -> DropinMarks:
    """Parse ownership marks from any text (never raises). The hash is valid only when
    exactly one hash line exists and equals the sha256 of the rest of the file."""
    lines = [line.rstrip("\n") for line in _lines(text)]
    lane = _single(lines, LANE_MARK)
    mark = _single(lines, HASH_MARK)
    actual = content_hash(text)
    valid = mark is not None and HASH_RE.fullmatch(mark) is not None and mark == actual
    return DropinMarks(lane=lane, hash=mark, hash_valid=valid, content_hash=actual)


def rendered_hash(lane: RunnerLaneMaintainerDesiredState, proxy: str | None = None) -> str:
    """The hash the lane's drop-in has when it is current."""
    return content_hash(render_dropin(lane, proxy))
