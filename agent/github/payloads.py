"""GitHub's JSON as the adapter reads it: strict payload models, converted into the contracts'
runner models. Errors name field paths only, never values (a payload may hold a token)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, RootModel, SecretStr, ValidationError

from agent.contracts import GithubInventory, GithubLabel, GithubRunner
from agent.github.errors import GitHubNotFound, GitHubProtocolError
from agent.github.models import RunnerDownload
from helper.contract.models import describe_validation
from helper.contract.redact import REDACTOR

DEFAULT_READ_ONLY = frozenset({"self-hosted", "linux", "x64", "arm", "arm64", "macos", "windows"})
_M = TypeVar("_M", bound=BaseModel)


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class ApiLabel(Payload):
    id: int | None = None
    name: str
    type: Literal["read-only", "custom"] | None = None


class ApiRunner(Payload):
    id: int
    name: str
    os: str
    status: str
    busy: bool
    labels: list[ApiLabel]
    runner_group_id: int | None = None
    version: str | None = None


class ApiRunnerPage(Payload):
    total_count: int
    runners: list[ApiRunner]


class ApiRunnerGroup(Payload):
    id: int
    name: str


class ApiRunnerGroupPage(Payload):
    total_count: int
    runner_groups: list[ApiRunnerGroup]


class ApiLabels(Payload):
    total_count: int
    labels: list[ApiLabel]


class ApiApplication(Payload):
    os: str
    architecture: str
    download_url: str
    filename: str
    sha256_checksum: str | None = None
    temp_download_token: str | None = None


class ApplicationList(RootModel[list[ApiApplication]]):
    model_config = ConfigDict(strict=True)


class ApiInstallation(Payload):
    id: int


def label(api: ApiLabel) -> GithubLabel:
    kind = api.type or ("read-only" if api.name.lower() in DEFAULT_READ_ONLY else "custom")
    return GithubLabel(id=api.id, name=api.name, type=kind)


def runner(api: ApiRunner, operation: str) -> GithubRunner:
    if api.status not in ("online", "offline"):
        raise GitHubProtocolError(f"unknown runner status {api.status!r}", operation=operation)
    return GithubRunner(
        id=api.id,
        name=api.name,
        os=api.os,
        status="online" if api.status == "online" else "offline",
        busy=api.busy,
        labels=tuple(label(item) for item in api.labels),
        runner_group_id=api.runner_group_id,
        version=api.version,
    )


def inventory_named(runners: Sequence[GithubRunner], name: str) -> GithubInventory:
    """The runners of one listing whose name equals `name` (GitHub compares names without case)."""
    matching = tuple(r for r in runners if r.name.lower() == name.lower())
    return GithubInventory(runners=matching, total_count=len(matching))


def downloads(content: bytes, operation: str) -> list[RunnerDownload]:
    """The runner applications of a downloads answer; each temp_download_token is registered
    with the redactor before anything else looks at it."""
    out = []
    for item in parse(ApplicationList, content, operation).root:
        temp = item.temp_download_token
        if temp:
            REDACTOR.register(temp)
        out.append(
            RunnerDownload(
                os=item.os,
                architecture=item.architecture,
                download_url=item.download_url,
                filename=item.filename,
                sha256_checksum=item.sha256_checksum,
                temp_download_token=SecretStr(temp) if temp else None,
            )
        )
    return out


def select_download(
    downloads: Sequence[RunnerDownload], os: str = "linux", architecture: str = "x64"
) -> RunnerDownload:
    """The runner application for one platform; GitHubNotFound if GitHub offers none."""
    for download in downloads:
        if download.os == os and download.architecture == architecture:
            return download
    raise GitHubNotFound(f"no runner application for {os}/{architecture}")


def parse(model: type[_M], content: bytes, operation: str) -> _M:
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        # Field paths and reasons only: a payload may hold a secret, so never its values.
        where = describe_validation(exc, "(body)", limit=5)
        raise GitHubProtocolError(f"unexpected response: {where}", operation=operation) from None


def parses(schema: type[BaseModel] | None, content: bytes, operation: str) -> bool:
    """Whether `content` parses as `schema` (no schema: any body does)."""
    if schema is None:
        return True
    try:
        parse(schema, content, operation)
    except GitHubProtocolError:
        return False
    return True


def error_message(content: bytes, reason: str) -> str:
    """GitHub's own `message` from an error body, short; never the body itself (`reason`, the
    HTTP reason phrase, where the body has none)."""
    try:
        data = json.loads(content)
    except ValueError:
        return reason or "error"
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:300] if message else (reason or "error")
