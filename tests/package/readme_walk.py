"""README's "Install on a host" parsed into the steps a newcomer types, with only the README's
own placeholders substituted (tests/package/test_readme_install.py walks them on the .deb),
GitHub being the Enterprise Server of README's one `[github] web_url` setting.

Nothing here is a copy of the steps: every command and the lanes.toml come from README.md. A
README whose section no longer has the shape below fails loudly (ReadmeShapeError), naming
what moved, so the walk follows the README or the test is taught the new step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Install on a host"
# The placeholders the README asks the reader to replace.
REPOSITORY_PLACEHOLDER = "owner/repo"  # "allow the repository"
HOST_PLACEHOLDER = "build-01"  # "this host (`hostname`)"
RECORD_PLACEHOLDER = "RECORD_ID"  # `audits show RECORD_ID`
# The lead of the one GitHub Enterprise Server setting (walked against the emulator).
ENTERPRISE = "GitHub Enterprise Server."
# Leads of optional settings (not every host needs them): not among the steps below.
OPTIONAL = (ENTERPRISE, "Behind a proxy.")
_FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
_LEAD = re.compile(r"^\*\*([^*]+)\*\*", re.MULTILINE)
_WEB_URL = re.compile(r'^web_url = "(https://[^"/]+)"', re.MULTILINE)


class ReadmeShapeError(AssertionError):
    """The README's install section no longer reads as the walk expects."""


@dataclass(frozen=True)
class Walk:
    """The section's steps for one host, in the order the README gives them."""

    install: tuple[str, ...]  # on the host (the build machine's lines are the deb fixture)
    credential: str  # writes the token read from stdin ("paste, then Ctrl-D")
    lanes_toml: str  # as declared, `apply = false`
    lane: str
    audit: tuple[str, ...]
    restart: tuple[str, ...]
    remove: tuple[str, ...]
    enterprise: str  # README's `[github]` block for a GitHub Enterprise Server
    enterprise_url: str  # the example server's web URL in it

    def on_server(self, lanes_toml: str, web_url: str) -> str:
        """LANES_TOML with README's GitHub Enterprise Server block first, its example server
        replaced by WEB_URL (the block's one setting; nothing else is added)."""
        return self.enterprise.replace(self.enterprise_url, web_url) + "\n\n" + lanes_toml

    def applied(self) -> str:
        """The lanes.toml after "set `apply = true` and save again"."""
        if self.lanes_toml.count("apply = false") != 1:
            raise ReadmeShapeError("the README's lanes.toml should say `apply = false` once")
        return self.lanes_toml.replace("apply = false", "apply = true")


def section(readme: str) -> str:
    start = readme.find(f"\n{SECTION}\n")
    if start < 0:
        raise ReadmeShapeError(f"README.md has no {SECTION!r} section")
    end = readme.find("\n## ", start + len(SECTION) + 2)
    return readme[start : end if end > 0 else len(readme)]


def blocks(text: str) -> dict[tuple[str, str], list[str]]:
    """Fenced blocks keyed by (the bold lead of their paragraph, language); before the
    first lead the lead is ""."""
    found: dict[tuple[str, str], list[str]] = {}
    leads = [(m.start(), m.group(1).strip()) for m in _LEAD.finditer(text)]
    for fence in _FENCE.finditer(text):
        lead = next((name for at, name in reversed(leads) if at < fence.start()), "")
        indent = len(fence.group(1))
        body = "\n".join(line[indent:] for line in fence.group(3).splitlines())
        found.setdefault((lead, fence.group(2)), []).append(body)
    return found


def commands(block: str) -> tuple[str, ...]:
    """The command lines of a shell block (backslash continuations joined)."""
    joined = re.sub(r"\\\n\s*", "", block)
    return tuple(line for line in joined.splitlines() if line.strip())


def as_root(command: str) -> str:
    """The test already is root (the sandbox has no sudo): `sudo X` runs as `X`."""
    return command.removeprefix("sudo ")


def parse(readme: str, *, repository: str, host: str) -> Walk:
    """The walk of README's install section for REPOSITORY on HOST."""
    text = section(readme)
    for placeholder in (REPOSITORY_PLACEHOLDER, HOST_PLACEHOLDER):
        if placeholder not in text:
            raise ReadmeShapeError(f"the install section no longer uses {placeholder!r}")
    text = text.replace(REPOSITORY_PLACEHOLDER, repository).replace(HOST_PLACEHOLDER, host)
    found = blocks(text)
    wanted = {
        ("", "sh"),
        ("Configure a lane.", "sh"),
        ("Configure a lane.", "toml"),
        ("Read its audit.", "sh"),
        ("Restart it.", "sh"),
        ("Remove it.", "sh"),
    }
    walked = {key for key in found if key[0] not in OPTIONAL}
    if walked != wanted or any(len(found[key]) != 1 for key in wanted):
        raise ReadmeShapeError(
            "the install section's blocks changed; teach tests/package/readme_walk.py:"
            f" expected one each of {sorted(wanted)}, found {sorted(found.items())}"
        )
    install = commands(found[("", "sh")][0])
    on_host = tuple(c for c in install if re.search(r"\s# on the host\b", c))
    if not on_host or len(on_host) + 1 != len(install) or "make deb" not in install[0]:
        raise ReadmeShapeError(f"expected `make deb` then lines '# on the host': {install}")
    credential_lines = commands(found[("Configure a lane.", "sh")][0])
    if len(credential_lines) != 1 or "credentials/github-token" not in credential_lines[0]:
        raise ReadmeShapeError(f"expected one command writing the token: {credential_lines}")
    credential = credential_lines[0]
    lanes_toml = found[("Configure a lane.", "toml")][0] + "\n"
    lane = re.findall(r'^lane_name = "([^"]+)"$', lanes_toml, re.MULTILINE)
    if len(lane) != 1:
        raise ReadmeShapeError(f"expected one lane in the README's lanes.toml, found {lane}")
    enterprise = found.get((ENTERPRISE, "toml"), [])
    servers = _WEB_URL.findall(enterprise[0]) if len(enterprise) == 1 else []
    if len(servers) != 1 or not enterprise[0].startswith("[github]\n"):
        raise ReadmeShapeError(
            f'expected one `[github]` block with one `web_url = "https://..."` after'
            f" **{ENTERPRISE}**, found {enterprise}"
        )
    return Walk(
        enterprise=enterprise[0],
        enterprise_url=servers[0],
        install=tuple(as_root(c) for c in on_host),
        credential=as_root(credential),
        lanes_toml=lanes_toml,
        lane=lane[0],
        audit=tuple(as_root(c) for c in commands(found[("Read its audit.", "sh")][0])),
        restart=tuple(as_root(c) for c in commands(found[("Restart it.", "sh")][0])),
        remove=tuple(as_root(c) for c in commands(found[("Remove it.", "sh")][0])),
    )
