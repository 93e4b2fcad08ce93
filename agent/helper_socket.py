"""The helper port's adapter: the root helper over its Unix socket."""

from __future__ import annotations

from pydantic import SecretStr

from agent.errors import PlanStepFailed
from helper.contract.client import call
from helper.contract.protocol import DEFAULT_SOCKET, PROTOCOL_VERSION, Request, Verb, VerbResult


class SocketHelper:
    """The helper over its Unix socket; an error response becomes PlanStepFailed naming the verb."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 300.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def call(
        self,
        verb: Verb,
        lane: str,
        *,
        token: SecretStr | None = None,
        archive_sha256: str | None = None,
    ) -> VerbResult:
        request = Request.model_validate(
            {
                "version": PROTOCOL_VERSION,
                "verb": verb,
                "lane": lane,
                "dry_run": False,
                "token": token,
                "archive_sha256": archive_sha256,
            }
        )
        response = call(self.socket_path, request, self.timeout)
        if response.error is not None:
            reason = f" ({response.error.reason})" if response.error.reason else ""
            raise PlanStepFailed(verb, f"{response.error.code}{reason}: {response.error.message}")
        return VerbResult.from_result(response.result)
