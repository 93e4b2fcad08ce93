"""What a person and the journal see (issue 15): human output on stdout, no logs on stderr
unless asked (-v) or under systemd, one journal line per record, progress only on a terminal,
STATUS= for systemd and the metrics file after a pass. Real CLI runs against the emulator."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import cli
from tests.agent.test_progress import NotifyListener
from tests.emulators.github_api import GitHubEmulator

REPOSITORY = "cbusillo/odoo-tenant-cm-website"  # the example lane's
LANE = "cm-website-chris-testing"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example lanes.toml, a token, the emulator; no systemd around (unless a test says)."""
    with GitHubEmulator() as github:
        github.state.add_repository(REPOSITORY)
        token = f"ghp_out{secrets.token_hex(16)}"
        github.state.add_pat(token)
        credentials = tmp_path / "credentials"
        credentials.mkdir(mode=0o700)
        (credentials / "github-token").write_text(token + "\n")
        (credentials / "github-token").chmod(0o600)
        for key, value in {
            "LAUNCHPLANE_GITHUB_API_URL": github.api_url,
            "LAUNCHPLANE_GITHUB_WEB_URL": github.web_url,
            "LAUNCHPLANE_LANES_FILE": str(cli.example_path("lanes.toml")),
            "LAUNCHPLANE_CREDENTIALS": str(credentials),
            "LAUNCHPLANE_AUDIT_DIR": str(tmp_path / "state" / "audits"),
            "LAUNCHPLANE_CACHE_DIR": str(tmp_path / "cache"),
            "LAUNCHPLANE_RUNTIME_DIR": str(tmp_path / "run"),
            "LAUNCHPLANE_HELPER_SOCKET": str(tmp_path / "no-helper.sock"),
            "LAUNCHPLANE_METRICS_FILE": str(tmp_path / "textfile" / "launchplane.prom"),
        }.items():
            monkeypatch.setenv(key, value)
        for key in ("CREDENTIALS_DIRECTORY", "JOURNAL_STREAM", "INVOCATION_ID", "NOTIFY_SOCKET"):
            monkeypatch.delenv(key, raising=False)
        yield tmp_path


def test_a_run_by_hand_prints_the_plan_on_stdout_and_nothing_on_stderr(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan"]) == cli.EXIT_BLOCKED  # the example lane is for another host
    out, err = capsys.readouterr()
    assert f"lane    {LANE}" in out
    assert err == ""


def test_dash_v_adds_the_logs_on_stderr(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["-v", "plan"])
    out, err = capsys.readouterr()
    assert "audit.record" in err
    assert "audit.record" not in out


@pytest.mark.parametrize(
    ("variable", "value"), [("INVOCATION_ID", "0123456789abcdef"), ("JOURNAL_STREAM", "8:1234")]
)
def test_under_systemd_each_record_is_one_journal_line(
    host: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    """The unit runs `--json reconcile --due`; the journal (stdout and stderr) gets one
    compact line per record, never the pretty-printed record."""
    monkeypatch.setenv(variable, value)
    assert cli.main(["--json", "reconcile"]) == cli.EXIT_OK  # apply = false: only planned
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    summary = json.loads(line)
    assert summary["lane"] == LANE
    assert summary["status"] == "planned"
    assert summary["blockers"].split(",")[0] == "host_mismatch"  # root cause first
    journal = (out + err).splitlines()
    assert [x for x in journal if summary["record"] in x] == [line]
    assert json.loads(err.splitlines()[-1])["event"] == "pass.done"
    # ...and the same without --json: key=value
    monkeypatch.setenv("LAUNCHPLANE_METRICS_FILE", "")
    cli.main(["reconcile"])
    (text,) = capsys.readouterr().out.splitlines()
    assert text.startswith(f"lane={LANE} status=planned record={summary['record']} blockers=")


def test_a_cli_pass_sends_its_steps_to_the_notify_socket_in_order(
    host: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = NotifyListener(host / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(host / "notify"))
    try:
        cli.main(["reconcile"])
        seen = listener.received()
    finally:
        listener.sock.close()
    assert seen == [
        "STATUS=observing 1 of 1 lanes",
        f"STATUS=lane {LANE}: planning",
        f"STATUS=pass done: {LANE}=planned",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("argv", "shown"), [([], True), (["--json"], False)])
def test_progress_shows_on_a_terminal_and_not_with_json(
    host: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], shown: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    cli.main([*argv, "restart", "--lane", LANE])
    progress = f"lane {LANE}: observing GitHub, systemd and the host\n"
    assert (progress in terminal.getvalue()) is shown


def test_no_progress_when_stdout_is_not_a_terminal(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["restart", "--lane", LANE])
    assert "observing GitHub" not in capsys.readouterr().out


def test_a_pass_writes_the_metrics_file(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prom = host / "textfile" / "launchplane.prom"
    cli.main(["reconcile"])
    assert not prom.exists()  # no textfile directory: nothing to feed, nothing fails
    prom.parent.mkdir()
    cli.main(["reconcile"])
    families = {m.name: m for m in text_string_to_metric_families(prom.read_text())}
    (proven,) = families["launchplane_lane_proven"].samples
    assert (proven.labels, proven.value) == ({"lane": LANE}, 0.0)
    (requests,) = families["launchplane_pass_github_requests"].samples
    assert requests.value >= 1
    assert families["launchplane_github_rate_limit_remaining"].samples[0].value > 0
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
