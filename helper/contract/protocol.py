"""The helper's socket protocol: strict request/response models, their wire form, a verb's
result. One connection carries exactly one request frame and one response frame (frames:
helper.contract.framing; the client call: helper.contract.client). No side effects. A
request's token is masked only in that request's own answer: the helper gives every request
its own `Redactor`, so nothing a peer sends changes how another request is rendered.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from helper.contract.errors import (
    HelperError,
    RequestInvalid,
    UnknownVerb,
)
from helper.contract.framing import MAX_FRAME, decode_json_object
from helper.contract.identifiers import Finding, lane_name_findings
from helper.contract.models import StrictModel, describe_validation
from helper.contract.redact import REDACTOR, Redactor

PROTOCOL_VERSION = 1
DEFAULT_SOCKET = "/run/launchplane/helper.sock"

Verb = Literal[
    "status",
    "install-or-update-unit",
    "daemon-reload",
    "enable-now",
    "restart",
    "stop",
    "disable",
    "remove-unit",
    "install-runner",
    "register-runner",
    "unregister-runner",
    "remove-runner-directory",
]
VERBS: tuple[str, ...] = get_args(Verb)
# Only registration takes a token: removal deletes the registration through the REST API
# (the agent), then `unregister-runner` clears the local files; no remove token reaches a host.
TOKEN_VERBS = frozenset({"register-runner"})
ARCHIVE_VERBS = frozenset({"install-runner"})

# Printable ASCII without space, quote or backslash: GitHub registration/remove tokens are
# alphanumeric; the bound keeps a token unable to break out of any JSON or log encoding.
TOKEN_RE = re.compile(r"[!#-\[\]-~]{16,1024}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")


class Request(StrictModel):
    """One request. `token` only for register/unregister-runner, `archive_sha256` only for
    install-runner; both are required there. The token is never serialised by pydantic."""

    version: StrictInt
    verb: Verb
    lane: Annotated[str, Field(min_length=1, max_length=128)]
    dry_run: bool
    token: SecretStr | None = None
    archive_sha256: str | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != PROTOCOL_VERSION:
            raise ValueError(
                f"unsupported protocol version (this helper speaks {PROTOCOL_VERSION})"
            )
        return value

    @field_validator("lane")
    @classmethod
    def _lane(cls, value: str) -> str:
        if lane_name_findings("lane", value):
            raise ValueError("unsafe lane name: must match [a-z0-9][a-z0-9._-]{0,127}")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if not TOKEN_RE.fullmatch(secret):
                raise ValueError("token must be 16-1024 printable ASCII characters")
        return value

    @field_validator("archive_sha256")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.fullmatch(value):
            raise ValueError("archive_sha256 must be 64 lowercase hexadecimal characters")
        return value

    @model_validator(mode="after")
    def _fields_match_verb(self) -> Request:
        if (self.token is not None) != (self.verb in TOKEN_VERBS):
            need = "requires" if self.verb in TOKEN_VERBS else "does not take"
            raise ValueError(f"verb {self.verb} {need} a token")
        if (self.archive_sha256 is not None) != (self.verb in ARCHIVE_VERBS):
            need = "requires" if self.verb in ARCHIVE_VERBS else "does not take"
            raise ValueError(f"verb {self.verb} {need} archive_sha256")
        return self


class FindingBody(StrictModel):
    code: str
    field: str
    message: str


class ErrorBody(StrictModel):
    """`code` is one of the stable codes in helper.contract.errors; `reason` refines `conflict`."""

    code: str
    message: str
    reason: str | None = None
    findings: Annotated[tuple[FindingBody, ...], Field(strict=False)] = ()


class Response(StrictModel):
    """The helper's answer. `ok` exactly when `error` is None; `result` is verb-specific."""

    version: StrictInt = PROTOCOL_VERSION
    ok: bool
    verb: str | None
    lane: str | None
    dry_run: bool
    result: dict[str, JsonValue] = Field(default_factory=dict)
    error: ErrorBody | None = None

    @model_validator(mode="after")
    def _ok_iff_no_error(self) -> Response:
        if self.ok != (self.error is None):
            raise ValueError("ok must be true exactly when there is no error")
        return self


class VerbResult(BaseModel):
    """A verb's answer as the agent acts on it: did it change anything, must systemd reload
    unit files, and its ordered actions; `detail` is the whole answer as sent (evidence).

    Read fail-safe: an answer that does not say it changed nothing counts as changed, and
    one that does not say whether a reload is needed needs one when it changed something.
    """

    model_config = ConfigDict(frozen=True)

    changed: bool
    reload_needed: bool
    actions: tuple[dict[str, JsonValue], ...] = ()
    detail: dict[str, JsonValue] = Field(default_factory=dict)

    @classmethod
    def from_result(cls, result: dict[str, JsonValue]) -> VerbResult:
        changed = result.get("changed", True)
        changed = changed if isinstance(changed, bool) else True
        reload_needed = result.get("daemon_reload_needed", changed)
        actions = result.get("actions", [])
        return cls(
            changed=changed,
            reload_needed=reload_needed if isinstance(reload_needed, bool) else True,
            actions=tuple(a for a in actions if isinstance(a, dict))
            if isinstance(actions, list)
            else (),
            detail=result,
        )


def error_body(exc: HelperError, redactor: Redactor = REDACTOR) -> ErrorBody:
    """The wire form of a deliberate error (its message is redacted)."""
    findings: tuple[Finding, ...] = getattr(exc, "findings", ())
    return ErrorBody(
        code=exc.code,
        message=redactor.redact(str(exc)),
        reason=getattr(exc, "reason", None),
        findings=tuple(
            FindingBody(code=f.code, field=f.field, message=redactor.redact(f.message))
            for f in findings
        ),
    )


def decode_request(payload: bytes, redactor: Redactor | None = None) -> Request:
    """Parse and validate one frame body. Every failure is a ProtocolError subclass.

    A string `token` is registered with `redactor` (the request's own; a throwaway one when
    none is given) before anything can echo it; never with the process-wide REDACTOR."""
    redactor = Redactor() if redactor is None else redactor
    obj = decode_json_object(payload)
    token = obj.get("token")
    if isinstance(token, str):
        redactor.register(token)
    verb = obj.get("verb")
    if isinstance(verb, str) and verb not in VERBS:
        raise UnknownVerb(f"unknown verb; known verbs: {', '.join(VERBS)}")
    try:
        return Request.model_validate(obj)
    except ValidationError as exc:
        raise RequestInvalid(redactor.redact(describe_validation(exc, "(request)"))) from None


def encode_request(request: Request) -> bytes:
    """The wire form of a request, the token included (only ever written to the socket)."""
    obj: dict[str, Any] = {
        "version": request.version,
        "verb": request.verb,
        "lane": request.lane,
        "dry_run": request.dry_run,
    }
    if request.token is not None:
        obj["token"] = request.token.get_secret_value()
    if request.archive_sha256 is not None:
        obj["archive_sha256"] = request.archive_sha256
    return json.dumps(obj, separators=(",", ":")).encode()


def redact_response(response: Response, redactor: Redactor) -> Response:
    """A copy of `response` with every string (keys included) passed through `redactor`."""
    return Response.model_validate(redactor.redact_obj(response.model_dump(mode="json")))


def encode_response(response: Response, redactor: Redactor = REDACTOR) -> bytes:
    """Redacted JSON of a response; too large a response becomes an `internal` error."""
    data = redactor.redact_obj(response.model_dump(mode="json"))
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_FRAME:
        small = Response(
            ok=False,
            verb=response.verb,
            lane=response.lane,
            dry_run=response.dry_run,
            error=ErrorBody(code="internal", message="response too large"),
        )
        return encode_response(small, redactor)
    return body


def decode_response(payload: bytes) -> Response:
    obj = decode_json_object(payload)
    try:
        return Response.model_validate(obj)
    except ValidationError as exc:
        raise RequestInvalid(
            "malformed response: " + describe_validation(exc, "(request)")
        ) from None
