"""The agent's GitHub side: settings, credentials, the REST adapter and its errors."""

from agent.github.auth import AppCredential, Credential, TokenCredential, load_credential
from agent.github.cache import EtagCache
from agent.github.client import USED_OPERATIONS, GitHubClient
from agent.github.errors import (
    GitHubAuthError,
    GitHubCredentialError,
    GitHubError,
    GitHubNotFound,
    GitHubProtocolError,
    GitHubRateLimited,
    GitHubRunnerBusy,
    GitHubUnavailable,
    GitHubValidationFailed,
)
from agent.github.models import RateLimit, RequestStats, RunnerDownload, RunnerToken
from agent.github.payloads import inventory_named, select_download
from agent.github.settings import GitHubSettings

__all__ = [
    "USED_OPERATIONS",
    "AppCredential",
    "Credential",
    "EtagCache",
    "GitHubAuthError",
    "GitHubClient",
    "GitHubCredentialError",
    "GitHubError",
    "GitHubNotFound",
    "GitHubProtocolError",
    "GitHubRateLimited",
    "GitHubRunnerBusy",
    "GitHubSettings",
    "GitHubUnavailable",
    "GitHubValidationFailed",
    "RateLimit",
    "RequestStats",
    "RunnerDownload",
    "RunnerToken",
    "TokenCredential",
    "inventory_named",
    "load_credential",
    "select_download",
]
