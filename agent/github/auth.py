"""GitHub credentials from systemd's credential directory: a token, or a GitHub App's key."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agent.github.errors import GitHubCredentialError
from agent.github.settings import ENV_CREDENTIALS_DIRECTORY
from helper.contract.models import StrictModel, describe_validation
from helper.contract.redact import REDACTOR

TOKEN_FILE = "github-token"  # noqa: S105 - a file name
APP_FILE = "github-app.json"
APP_KEY_FILE = "github-app-key.pem"
MAX_CREDENTIAL_BYTES = 64 * 1024
JWT_BACKDATE = timedelta(seconds=60)  # GitHub's advice against clock drift
JWT_LIFETIME = timedelta(minutes=9)  # GitHub allows at most 10
REFRESH_MARGIN = timedelta(minutes=5)  # an installation token is renewed this long before expiry


class TokenCredential(BaseModel):
    """A fine-grained or classic personal access token (or any token GitHub takes as Bearer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    source: str = ""  # the file it was read from, named in GitHub's refusals


class AppCredential(BaseModel):
    """A GitHub App: its id (or client id), optionally a fixed installation, and its RSA key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str
    installation_id: int | None = None
    private_key: SecretStr
    source: str = ""  # the files it was read from, named in GitHub's refusals

    def jwt(self, now: datetime) -> SecretStr:
        """An RS256 JWT that authenticates as the App for at most nine minutes."""
        payload = {
            "iat": int((now - JWT_BACKDATE).timestamp()),
            "exp": int((now + JWT_LIFETIME).timestamp()),
            "iss": self.app_id,
        }
        # Lazy (docs/startup.md): only an App signs, so a token's pass never loads PyJWT.
        import jwt  # noqa: PLC0415

        encoded = jwt.encode(payload, self.private_key.get_secret_value(), algorithm="RS256")
        REDACTOR.register(encoded)
        return SecretStr(encoded)


Credential = TokenCredential | AppCredential


class _AppFile(StrictModel):
    app_id: int | str = Field(union_mode="left_to_right")
    installation_id: int | None = Field(default=None, gt=0)


def credentials_directory(environ: Mapping[str, str] | None = None) -> Path:
    """`$CREDENTIALS_DIRECTORY`, the directory systemd fills from `LoadCredential=`."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_CREDENTIALS_DIRECTORY)
    if not value:
        raise GitHubCredentialError(
            f"${ENV_CREDENTIALS_DIRECTORY} is not set: run under systemd with LoadCredential= "
            "or pass the credential directory"
        )
    return Path(value)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise GitHubCredentialError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise GitHubCredentialError(f"{path}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GitHubCredentialError(f"{path}: not UTF-8") from None


def _token(path: Path) -> TokenCredential:
    token = _read(path).strip()
    if not token:
        raise GitHubCredentialError(f"{path}: empty")
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in token):
        raise GitHubCredentialError(f"{path}: must hold one token on one line")
    REDACTOR.register(token)
    return TokenCredential(token=SecretStr(token), source=str(path))


def _app(config_path: Path, key_path: Path) -> AppCredential:
    try:
        config = _AppFile.model_validate_json(_read(config_path))
    except ValidationError as exc:
        raise GitHubCredentialError(
            f"{config_path}: {describe_validation(exc, '(file)')}"
        ) from None
    pem = _read(key_path)
    REDACTOR.register(pem.strip())
    for line in pem.splitlines():
        if not line.startswith("-----"):
            REDACTOR.register(line.strip())
    # Lazy (docs/startup.md): cryptography is for App keys only.
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise GitHubCredentialError(f"{key_path}: not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise GitHubCredentialError(f"{key_path}: a GitHub App key must be RSA")
    app_id = str(config.app_id).strip()
    if not app_id:
        raise GitHubCredentialError(f"{config_path}: app_id: empty")
    return AppCredential(
        app_id=app_id,
        installation_id=config.installation_id,
        private_key=SecretStr(pem),
        source=f"{config_path} + {key_path}",
    )


LOAD_CREDENTIAL_ID = "github"
AGENT_USER = "launchplane-agent"  # the package's sysusers account, User= of the agent service


def _allowed_owners() -> set[int]:
    owners = {0, os.geteuid()}
    with contextlib.suppress(KeyError):
        owners.add(pwd.getpwnam(AGENT_USER).pw_uid)
    return owners


def check_host_file(path: Path) -> None:
    """A credential on the host's disk must be a real file that only root or the agent can
    read: job code running as another user must never read the token."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise GitHubCredentialError(
            f"{path}: is a symlink; systemd's LoadCredential= skips symlinks, so the service "
            f"would find no credential: put the file itself there, then `chmod 600 {path}`"
        )
    if st.st_uid not in _allowed_owners():
        raise GitHubCredentialError(
            f"{path}: owned by uid {st.st_uid}: run `chown root {path}` and `chmod 600 {path}`"
        )
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise GitHubCredentialError(
            f"{path}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"run `chmod 600 {path}`"
        )


def _from_systemd(base: Path) -> bool:
    """systemd's own credential directory: private to the service, modes set by systemd
    (it may grant the service user read access with an ACL, which shows in the group bits)."""
    given = os.environ.get(ENV_CREDENTIALS_DIRECTORY)
    return given is not None and given != "" and Path(given) == base


def credential_file(base: Path, name: str) -> Path:
    """`name` in a credential directory. systemd's `LoadCredential=github:<directory>` hands
    each file over as `github_<name>` (measured on systemd 252); by hand it is plain `name`."""
    loaded = base / f"{LOAD_CREDENTIAL_ID}_{name}"
    return loaded if loaded.is_symlink() or loaded.exists() else base / name


def load_credential(directory: Path | str | None = None) -> Credential:
    """The one credential in `directory` (default `$CREDENTIALS_DIRECTORY`): `github-token`, or
    `github-app.json` + `github-app-key.pem` (each also as `github_<name>`, as systemd names
    them). Both, or neither, is an error (fail closed)."""
    base = credentials_directory() if directory is None else Path(directory)
    token_path, app_path, key_path = (
        credential_file(base, name) for name in (TOKEN_FILE, APP_FILE, APP_KEY_FILE)
    )
    present = [p for p in (token_path, app_path, key_path) if p.is_symlink() or p.exists()]
    if not _from_systemd(base):
        for path in present:
            check_host_file(path)
    has_token, has_app, has_key = (p in present for p in (token_path, app_path, key_path))
    if has_token and (has_app or has_key):
        raise GitHubCredentialError(
            f"{base}: both {TOKEN_FILE} and a GitHub App credential are present; keep one"
        )
    if has_token:
        return _token(token_path)
    if has_app and has_key:
        return _app(app_path, key_path)
    if has_app or has_key:
        missing = APP_KEY_FILE if has_app else APP_FILE
        raise GitHubCredentialError(f"{base}: GitHub App credential incomplete: {missing} missing")
    raise GitHubCredentialError(
        f"{base}: no GitHub credential: expected {TOKEN_FILE}, or {APP_FILE} and {APP_KEY_FILE}"
    )


@dataclass
class _Cached:
    token: SecretStr
    expires_at: datetime


@dataclass
class InstallationTokens:
    """Installation tokens per installation, used until `REFRESH_MARGIN` before they expire;
    and which installation serves which repository."""

    _tokens: dict[int, _Cached] = field(default_factory=dict)
    _installations: dict[str, int] = field(default_factory=dict)

    def installation_for(self, repository: str) -> int | None:
        return self._installations.get(repository.lower())

    def remember_installation(self, repository: str, installation_id: int) -> None:
        self._installations[repository.lower()] = installation_id

    def valid(self, installation_id: int, now: datetime) -> SecretStr | None:
        cached = self._tokens.get(installation_id)
        if cached is None or now >= cached.expires_at - REFRESH_MARGIN:
            return None
        return cached.token

    def store(self, installation_id: int, token: SecretStr, expires_at: datetime) -> None:
        self._tokens[installation_id] = _Cached(token, expires_at)

    def forget(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)
