"""Secret masking: every registered value and its base64, URL and JSON encodings become `***`."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 6


def _base64_variants(secret: bytes) -> set[str]:
    """The secret base64-encoded at each of the three byte alignments it can have inside a
    larger encoded blob, cut to the characters that do not depend on its neighbours."""
    out: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret).decode()
        start = {0: 0, 1: 2, 2: 3}[shift]
        stable_bytes = shift + len(secret)
        end = (stable_bytes // 3) * 4
        core = encoded[start:end]
        if len(core) >= MIN_SECRET_LENGTH:
            out.add(core)
            out.add(core.replace("+", "-").replace("/", "_"))
    return out


def variants(secret: str) -> set[str]:
    """The forms a secret can take in a log line, a URL, a JSON document or a base64 blob."""
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    }
    forms |= _base64_variants(raw)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """A registry of secret values; thread-safe; longest forms are replaced first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: tuple[str, ...] = ()

    def register(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            forms = set(self._forms) | variants(secret)
            self._forms = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def redact_obj(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted (keys included)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)): self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


REDACTOR = Redactor()
"""The process-wide registry: whoever learns a secret registers it here first."""
