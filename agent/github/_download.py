"""Runner archive downloads, verified against GitHub's sha256 and moved into place atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

import httpx
import structlog

from agent.github._transport import RETRYABLE_STATUS, Retry, Transport
from agent.github.errors import GitHubError, GitHubProtocolError, GitHubUnavailable
from agent.github.models import RunnerDownload
from agent.github.settings import base_url

log = structlog.get_logger(__name__)

DOWNLOAD = "runner-application-download"  # not a REST operation: the release file itself
FILENAME_RE = re.compile(r"actions-runner-[A-Za-z0-9_.-]+\.(?:tar\.gz|zip)")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_digest(actual: str, expected: str, name: str) -> None:
    if actual != expected:
        raise GitHubProtocolError(
            f"{name}: sha256 mismatch; download discarded", operation=DOWNLOAD
        )


def download_runner(transport: Transport, download: RunnerDownload, directory: Path) -> Path:
    """The runner archive in `directory`, verified against its sha256: reused if already
    there and intact, else downloaded (no GitHub credential is sent with it), checked,
    and moved into place atomically. A missing checksum is refused, never trusted."""
    checksum = (download.sha256_checksum or "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", checksum):
        raise GitHubProtocolError(
            f"{download.filename}: no valid sha256_checksum; refusing an unverified runner",
            operation=DOWNLOAD,
        )
    if not FILENAME_RE.fullmatch(download.filename):
        raise GitHubProtocolError(f"unexpected file name {download.filename!r}", operation=DOWNLOAD)
    try:
        url = base_url(download.download_url)
    except ValueError as exc:
        raise GitHubProtocolError(f"download_url: {exc}", operation=DOWNLOAD) from None
    target = directory / download.filename
    if target.is_file() and _sha256_file(target) == checksum:
        return target
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    headers = {"Accept": "application/octet-stream"}
    if download.temp_download_token is not None:
        headers["Authorization"] = f"Bearer {download.temp_download_token.get_secret_value()}"

    def attempt() -> Path:
        return _download_once(transport, url, headers, target=target, checksum=checksum)

    return transport.retrying(DOWNLOAD, attempt)


def _download_once(
    transport: Transport, url: str, headers: dict[str, str], *, target: Path, checksum: str
) -> Path:
    directory = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as handle:
            try:
                with transport.http.stream("GET", url, headers=headers, follow_redirects=True) as r:
                    transport.stats.observe(DOWNLOAD, r.status_code, {})
                    if r.status_code in RETRYABLE_STATUS:
                        raise Retry(
                            GitHubUnavailable(
                                "download failed", operation=DOWNLOAD, status=r.status_code
                            )
                        )
                    if r.status_code != 200:
                        raise GitHubError(
                            "download failed", operation=DOWNLOAD, status=r.status_code
                        )
                    for chunk in r.iter_bytes():
                        size += len(chunk)
                        if size > transport.settings.max_download_bytes:
                            raise GitHubProtocolError("download too large", operation=DOWNLOAD)
                        digest.update(chunk)
                        handle.write(chunk)
            except httpx.TransportError as exc:
                raise Retry(
                    GitHubUnavailable(f"network error: {type(exc).__name__}", operation=DOWNLOAD)
                ) from None
            handle.flush()
            os.fsync(handle.fileno())
        _check_digest(digest.hexdigest(), checksum, target.name)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("github.runner_downloaded", filename=target.name, bytes=size)
    return target
