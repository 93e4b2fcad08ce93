"""Where GitHub and the evidence service are: lanes.toml's `[github]` and `[evidence]` tables,
the environment's overrides and the one resolution every process (agent, CLI, helper) uses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from helper.contract.models import StrictModel

GITHUB_COM_API = "https://api.github.com"
GITHUB_COM_WEB = "https://github.com"
GHES_API_PATH = "/api/v3"
NETLOC_RE = re.compile(
    r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)  # a GitHub Enterprise Server's REST API lives under its web host

ENV_API_URL = "LAUNCHPLANE_GITHUB_API_URL"
ENV_WEB_URL = "LAUNCHPLANE_GITHUB_WEB_URL"
ENV_PROXY = "LAUNCHPLANE_GITHUB_PROXY"
ENV_EVIDENCE_URL = "LAUNCHPLANE_EVIDENCE_URL"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(value: str) -> str:
    """An absolute https URL (http only on loopback), no credentials, query or fragment; no
    trailing slash. Plain http elsewhere would put the token on the wire in clear."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("plain http is allowed only for a loopback host (an emulator)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not carry credentials, a query or a fragment")
    return value.strip().rstrip("/")


def web_root(value: str) -> str:
    """A base URL that is a server's root (scheme and host[:port]): what `config.sh --url`
    prefixes to `<owner>/<repo>`."""
    url = base_url(value)
    if urlsplit(url).path:
        raise ValueError(f"must be scheme and host only (like https://ghes.example), got {url!r}")
    return url


def proxy_url(value: str) -> str:
    """An http(s) proxy URL without a password: lanes.toml is world-readable, and job code
    runs on this host."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// proxy URL, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry a user or password (lanes.toml is world-readable)")
    if (
        parts.query
        or parts.fragment
        or parts.path.strip("/")
        or not NETLOC_RE.fullmatch(parts.netloc)
    ):
        raise ValueError("must be scheme, host and port only (like http://proxy.example:3128)")
    return f"{parts.scheme}://{parts.netloc}"


BaseUrl = Annotated[str, AfterValidator(base_url)]
WebRoot = Annotated[str, AfterValidator(web_root)]
ProxyUrl = Annotated[str, AfterValidator(proxy_url)]


class GitHubSite(StrictModel):
    """lanes.toml `[github]`: all optional; none set means github.com, no proxy. For a GitHub
    Enterprise Server `web_url` alone is enough (its API is `<web_url>/api/v3`)."""

    api_url: BaseUrl | None = None
    web_url: WebRoot | None = None
    proxy: ProxyUrl | None = None


class EvidenceSite(StrictModel):
    """lanes.toml `[evidence]`: where records are delivered; unset means nowhere."""

    url: BaseUrl | None = None


@dataclass(frozen=True)
class Endpoints:
    """The resolved GitHub endpoints of one process."""

    api_url: str
    web_url: str
    proxy: str | None


def same_server(api_url: str, web_url: str) -> bool:
    """Whether an API URL belongs to a web URL: github.com's `api.` host, a GitHub Enterprise
    Server's `<host>/api/v3` (or the emulator's), never another server."""
    api, web = urlsplit(api_url), urlsplit(web_url)
    if api.scheme != web.scheme:
        return False
    api_host, web_host = api.netloc.lower(), web.netloc.lower()
    if api_host == "api." + web_host:
        return True
    return api_host == web_host and api.path.rstrip("/") == GHES_API_PATH


def endpoint_problems(api_url: str | None, web_url: str | None) -> list[tuple[str, str]]:
    """Why two (possibly unset) settings cannot be one GitHub: (setting, problem + fix)."""
    if api_url is not None and web_url is None and api_url != GITHUB_COM_API:
        host = urlsplit(api_url).netloc
        return [
            (
                "web_url",
                f"missing: api_url points at {host}, but without web_url runners would "
                f"register at {GITHUB_COM_WEB}; set web_url (for a GitHub Enterprise Server, "
                f"its https://{host.removeprefix('api.')}) or remove api_url",
            )
        ]
    if api_url is not None and web_url is not None and not same_server(api_url, web_url):
        return [
            (
                "api_url",
                f"{api_url} is not the API of {web_url}; a GitHub Enterprise Server's API is "
                f"<web_url>{GHES_API_PATH} (set web_url alone and it is derived)",
            )
        ]
    return []


def derived_api_url(web_url: str) -> str:
    return GITHUB_COM_API if web_url == GITHUB_COM_WEB else web_url + GHES_API_PATH


def resolve_github(
    site: GitHubSite, env: Mapping[str, str]
) -> tuple[Endpoints, list[tuple[str, str]]]:
    """The endpoints this process uses: each environment override over lanes.toml over
    github.com. Returns the problems ((setting, what and fix)) instead of raising, so that
    every caller reports them its own way; no problems means the endpoints are one GitHub."""
    problems: list[tuple[str, str]] = []
    values: dict[str, str | None] = {}
    for key, env_key, check, configured in (
        ("api_url", ENV_API_URL, base_url, site.api_url),
        ("web_url", ENV_WEB_URL, web_root, site.web_url),
        ("proxy", ENV_PROXY, proxy_url, site.proxy),
    ):
        raw = env.get(env_key)
        if not raw:
            values[key] = configured
            continue
        try:
            values[key] = check(raw)
        except ValueError as exc:
            problems.append((env_key, str(exc)))
            values[key] = configured
    api, web = values["api_url"], values["web_url"]
    problems += [(f"github.{where}", why) for where, why in endpoint_problems(api, web)]
    web = web or GITHUB_COM_WEB
    return Endpoints(api or derived_api_url(web), web, values["proxy"]), problems


def resolve_evidence(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The evidence URL: LAUNCHPLANE_EVIDENCE_URL over `[evidence] url`; None when neither.
    A bad override raises ValueError."""
    raw = env.get(ENV_EVIDENCE_URL)
    return base_url(raw) if raw else configured
