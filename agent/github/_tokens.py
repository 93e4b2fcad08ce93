"""Token answers and the credential behind each request, with GitHub App installation tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import structlog
from pydantic import SecretStr

from agent.github import payloads
from agent.github._transport import Clock, Transport
from agent.github.auth import AppCredential, Credential, InstallationTokens
from agent.github.errors import GitHubProtocolError
from agent.github.scopes import operation, scope_path
from helper.contract.redact import REDACTOR

log = structlog.get_logger(__name__)

GET_INSTALLATION = "apps/get-repo-installation"
INSTALLATION_TOKEN = "apps/create-installation-access-token"  # noqa: S105 - an operationId


def secret_and_expiry(content: bytes, operation: str) -> tuple[str, datetime]:
    """`token` and `expires_at` of a token answer. The token is registered with the redactor
    before anything else looks at the answer, so no later error or log can show it."""
    try:
        data = json.loads(content)
    except ValueError:
        raise GitHubProtocolError("token answer is not JSON", operation=operation) from None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise GitHubProtocolError("token answer without a token", operation=operation)
    REDACTOR.register(token)
    raw_expiry = data.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(str(raw_expiry).replace("Z", "+00:00"))
    except ValueError:
        raise GitHubProtocolError(
            "token answer with a bad expires_at", operation=operation
        ) from None
    if expires_at.tzinfo is None:
        raise GitHubProtocolError("token answer with a naive expires_at", operation=operation)
    return token, expires_at


class Authorizer:
    """The bearer token for a repository's requests: the token credential itself, or a GitHub
    App's installation token, fetched with the App's JWT and kept until it nears expiry."""

    def __init__(self, credential: Credential, transport: Transport, clock: Clock) -> None:
        self._credential = credential
        self._transport = transport
        self._clock = clock
        self._installations = InstallationTokens()

    def authorization(self, repository: str) -> Callable[[], SecretStr]:
        credential = self._credential
        if isinstance(credential, AppCredential):
            return lambda: self._installation_token(repository, credential)
        return lambda: credential.token

    def forget(self, repository: str) -> bool:
        """Drop the repository's installation token so the next attempt fetches a fresh one;
        False if there is none to drop (a refused token credential cannot be renewed here)."""
        credential = self._credential
        if not isinstance(credential, AppCredential):
            return False
        installation = credential.installation_id or self._installations.installation_for(
            repository
        )
        if installation is None:
            return False
        self._installations.forget(installation)
        return True

    def _as_app(self, credential: AppCredential, operation: str, method: str, url: str) -> bytes:
        """The body of a request the App itself makes, signed with a fresh JWT."""

        def jwt() -> SecretStr:  # a fresh one for every attempt
            return credential.jwt(self._clock())

        return self._transport.send(operation, method, url, authorization=jwt).content

    def _installation_id(self, repository: str, credential: AppCredential) -> int:
        if credential.installation_id is not None:
            return credential.installation_id
        known = self._installations.installation_for(repository)
        if known is not None:
            return known
        op = operation(repository, "app")  # the repository's or the organization's installation
        content = self._as_app(credential, op, "GET", f"{scope_path(repository)}/installation")
        installation = payloads.parse(payloads.ApiInstallation, content, op).id
        self._installations.remember_installation(repository, installation)
        return installation

    def _installation_token(self, repository: str, credential: AppCredential) -> SecretStr:
        installation = self._installation_id(repository, credential)
        token = self._installations.valid(installation, self._clock())
        if token is not None:
            return token
        content = self._as_app(
            credential,
            INSTALLATION_TOKEN,
            "POST",
            f"/app/installations/{installation}/access_tokens",
        )
        value, expires_at = secret_and_expiry(content, INSTALLATION_TOKEN)
        secret = SecretStr(value)
        self._installations.store(installation, secret, expires_at)
        log.info(
            "github.installation_token_issued",
            installation_id=installation,
            expires_at=expires_at.isoformat(),
        )
        return secret
