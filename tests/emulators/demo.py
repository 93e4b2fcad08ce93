"""README's first command: a real dry-run pass of the agent against the bundled GitHub
emulator and the example lanes.toml. Needs no root; touches nothing outside a temp dir."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent import cli
from tests.emulators.github_api import GitHubEmulator

REPOSITORY = "cbusillo/odoo-tenant-cm-website"


def main(
    extra_credentials: dict[str, str] | None = None, after_pass: Callable[[], None] | None = None
) -> int:
    """The demo pass; `extra_credentials` (name -> value) join the GitHub token in the agent's
    credential directory and `after_pass` runs while the pass's files still exist."""
    with (
        tempfile.TemporaryDirectory(prefix="launchplane-demo-") as tmp,
        GitHubEmulator(validate=True) as github,
    ):
        github.state.add_repository(REPOSITORY)
        token = f"ghp_demo{secrets.token_hex(16)}"
        github.state.add_pat(token)
        credentials = Path(tmp, "credentials")
        credentials.mkdir(mode=0o700)
        for name, value in {"github-token": token, **(extra_credentials or {})}.items():
            (credentials / name).write_text(value + "\n", encoding="utf-8")
            (credentials / name).chmod(0o600)  # the agent refuses a credential others can read
        os.environ.update(
            {
                "LAUNCHPLANE_GITHUB_API_URL": github.api_url,
                "LAUNCHPLANE_GITHUB_WEB_URL": github.web_url,
                "LAUNCHPLANE_CREDENTIALS": str(credentials),
                "LAUNCHPLANE_AUDIT_DIR": f"{tmp}/audits",
                "LAUNCHPLANE_CACHE_DIR": f"{tmp}/cache",
                "LAUNCHPLANE_RUNTIME_DIR": f"{tmp}/run",
            }
        )
        os.environ.pop("CREDENTIALS_DIRECTORY", None)
        lanes = str(cli.example_path("lanes.toml"))
        print(f"# GitHub emulator at {github.api_url}; example lanes from {lanes}\n")
        print("# launchplane-agent plan   (dry-run: observes, plans, writes a planned record)")
        code = cli.main(["--lanes", lanes, "plan"])
        if after_pass is not None:
            after_pass()
        print("\n# launchplane-agent audits list")
        cli.main(["audits", "list"])
        asked = [r["operation"] for r in github.requests()]
        tokens = [op for op in asked if "token" in op]
        print(f"\n# GitHub requests made: {sorted(set(asked))}; token requests: {tokens or 'none'}")
        if github.validation_errors:
            print("# OpenAPI validation errors:", *github.validation_errors, sep="\n  ")
            return 1
        print(
            "# exit code of plan:",
            code,
            "(3 = blocked; on a host without systemd or the service user the plan says so)",
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
