"""The runner's OS dependencies (agent/osdeps.py): each missing one is a finding with its name
and Debian package; a complete host has none."""

from __future__ import annotations

from agent.osdeps import CODE, os_dependency_findings

TOOLS: dict[str, str | None] = {"ldd": "/usr/bin/ldd", "ldconfig": "/sbin/ldconfig"}
LISTING = """\
312 libs found in cache `/etc/ld.so.cache'
\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1
\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
\tlibicuuc.so.72 (libc6,x86-64) => /lib/x86_64-linux-gnu/libicuuc.so.72
\tlibicudata.so.72 (libc6,x86-64) => /lib/x86_64-linux-gnu/libicudata.so.72
\tlibgssapi_krb5.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgssapi_krb5.so.2
"""


def messages(tools: dict[str, str | None], listing: str | None) -> list[str]:
    findings = os_dependency_findings(tools, listing)
    assert {f.code for f in findings} <= {CODE}
    return [f.message for f in findings]


def test_a_complete_host_has_no_finding() -> None:
    assert messages(TOOLS, LISTING) == []


def test_each_missing_library_is_named_with_its_package() -> None:
    no_icu = "\n".join(line for line in LISTING.splitlines() if "libicu" not in line)
    assert messages(TOOLS, no_icu) == ["libicu not found by ldconfig (Debian package libicu72)"]
    old_ssl = LISTING.replace("libssl.so.3", "libssl.so.1.0.2")
    assert messages(TOOLS, old_ssl) == ["libssl not found by ldconfig (Debian package libssl3)"]
    # a library that only mentions the name elsewhere on its line does not count
    assert len(messages(TOOLS, "\tlibfoo.so.1 => /opt/libicuuc.so.72\n")) == 4


def test_missing_tools_and_an_unreadable_cache() -> None:
    found = messages({"ldd": None, "ldconfig": None}, None)
    assert found[:2] == [
        "ldd not found (Debian package libc-bin)",
        "ldconfig not found (Debian package libc-bin)",
    ]
    assert len(found) == 6  # and every library, since nothing could be listed
