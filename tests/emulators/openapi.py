"""GitHub's official OpenAPI description as referee: validates requests and responses, and
counts which operations (and statuses) the suite exercised."""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_ENV = "LAUNCHPLANE_GITHUB_OPENAPI"
VENDORED_SPEC = Path(__file__).with_name("github-openapi") / "actions-runners-repo-and-org.json"
SPEC_HOST = "https://api.github.com"  # the description's only server; paths are matched as if on it


class SpecViolation(Exception):
    """A request or response does not conform to GitHub's description."""


def spec_path() -> Path:
    override = os.environ.get(SPEC_ENV)
    return Path(override) if override else VENDORED_SPEC


@cache
def _load(path: str) -> tuple[dict[str, Any], OpenAPI]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return document, OpenAPI.from_dict(document)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    statuses: frozenset[str]


def _operations(document: Mapping[str, Any]) -> list[Operation]:
    out: list[Operation] = []
    for template, item in document["paths"].items():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                out.append(
                    Operation(
                        operation_id=operation["operationId"],
                        method=method.upper(),
                        template=template,
                        pattern=re.compile(regex),
                        statuses=frozenset(operation.get("responses", {})),
                    )
                )
    # Literal segments win over templated ones (`/runners/downloads` before `/runners/{id}`).
    out.sort(key=lambda op: (op.template.count("{"), -len(op.template)))
    return out


@dataclass
class Coverage:
    """Which (operationId, status) pairs were validated, and whether the description documents
    the status (GitHub documents 401/403/404/5xx bodies once, as `basic-error`, not per path)."""

    hits: Counter[tuple[str, int, bool]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation_id: str, status: int, documented: bool) -> None:
        with self.lock:
            self.hits[(operation_id, status, documented)] += 1

    def operations(self) -> set[str]:
        with self.lock:
            return {op for op, _status, _documented in self.hits}

    def rows(self) -> list[tuple[str, int, bool, int]]:
        with self.lock:
            return sorted((op, st, doc, n) for (op, st, doc), n in self.hits.items())


SESSION_COVERAGE = Coverage()
"""Every validation in this process lands here too; the suite's summary prints it."""


class _Request:
    def __init__(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> None:
        self.host_url = SPEC_HOST
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)), header=Headers(dict(headers))
        )
        self.body = body or None
        self.content_type = (
            dict((k.lower(), v) for k, v in headers.items()).get("content-type", "").lower()
            if body
            else ""
        )


class _Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = Headers(dict(headers))
        self.data = body or None
        self.content_type = self.headers.get("content-type", "").lower()


class SpecValidator:
    """Validates against the description at `path` (default: the vendored copy)."""

    def __init__(self, path: Path | None = None, coverage: Coverage | None = None) -> None:
        self.path = path or spec_path()
        self.document, self._app = _load(str(self.path))
        self.operations = _operations(self.document)
        self.coverage = coverage or Coverage()
        self._basic_error = OAS30Validator(self.document["components"]["schemas"]["basic-error"])

    def operation_ids(self) -> set[str]:
        return {op.operation_id for op in self.operations}

    def find(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def validate_request(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> Operation:
        op = self.find(method, path)
        if op is None:
            raise SpecViolation(f"{method} {path}: no such operation in GitHub's description")
        try:
            self._app.validate_request(_Request(method, path, query, headers, body))
        except Exception as exc:
            raise SpecViolation(f"{op.operation_id}: request: {_describe(exc)}") from None
        return op

    def validate_response(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, str]],
        request_headers: Mapping[str, str],
        request_body: bytes | None,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Operation:
        op = self.find(method, path)
        if op is None:
            raise SpecViolation(f"{method} {path}: no such operation in GitHub's description")
        documented = str(status) in op.statuses or "default" in op.statuses
        if documented:
            request = _Request(method, path, query, request_headers, request_body)
            try:
                self._app.validate_response(request, _Response(status, headers, body))
            except Exception as exc:
                raise SpecViolation(
                    f"{op.operation_id}: response {status}: {_describe(exc)}"
                ) from None
        elif status == 304:
            if body:
                raise SpecViolation(f"{op.operation_id}: a 304 must have no body")
        else:
            self._validate_error_body(op, status, headers, body)
        self.coverage.record(op.operation_id, status, documented)
        if self.coverage is not SESSION_COVERAGE:
            SESSION_COVERAGE.record(op.operation_id, status, documented)
        return op

    def _validate_error_body(
        self, op: Operation, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        if status < 400:
            raise SpecViolation(f"{op.operation_id}: undocumented success status {status}")
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if not content_type.startswith("application/json"):
            raise SpecViolation(f"{op.operation_id}: error {status} is not JSON")
        try:
            document = json.loads(body)
        except ValueError:
            raise SpecViolation(f"{op.operation_id}: error {status} body is not JSON") from None
        errors = sorted(self._basic_error.iter_errors(document), key=str)
        if errors:
            raise SpecViolation(f"{op.operation_id}: error {status}: {errors[0].message}")


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = getattr(exc, "schema_errors", None) or []
    details = "; ".join(getattr(e, "message", str(e)) for e in cause)
    return f"{text} ({details})" if details else text
