"""The checks of `launchplane-agent doctor`, each pure over what it is given."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from agent.audit_store import FilesystemAuditStore
from agent.contracts import BaselineFinding, LocalRunnerDirectory
from agent.doctor_model import Check
from agent.github.errors import GitHubAuthError, GitHubError, GitHubNotFound
from agent.orphans import Orphan
from agent.ports import GitHubPort
from agent.settings import AgentSettings
from helper.contract.errors import LaunchplaneError
from helper.contract.lane_policy import lane_findings
from helper.contract.lanes import LanesFile
from helper.contract.policy_paths import policy_path_problems
from helper.contract.site import endpoint_problems
from helper.contract.systemd import UnitProps

UNITS = ("launchplane-helper.socket", "launchplane-agent.timer", "launchplane-agent.path")
AGENT_SERVICE = "launchplane-agent.service"
START_LIMITED = frozenset({"start-limit-hit", "unit-start-limit-hit", "trigger-limit-hit"})
UNREACHABLE = "unknown"  # agent.doctor_probes.read_units: the load state when no bus answered
MAX_SKEW = timedelta(seconds=30)  # GitHub App JWTs are refused beyond about a minute


def ok(check: str, detail: str) -> Check:
    return Check(check, "ok", detail)


def check_units(props: Mapping[str, UnitProps]) -> Iterator[Check]:
    for unit in (*UNITS, AGENT_SERVICE):
        p = props.get(unit, UnitProps(unit))
        if p.load_state.startswith(UNREACHABLE):
            yield Check(
                "units",
                "systemd_unreachable",
                f"{unit}: {p.load_state}",
                "run doctor on the host itself, as root, with the system bus running",
            )
        elif p.result in START_LIMITED:
            yield Check(
                "units",
                "unit_start_limited",
                f"{unit}: {p.active_state}, stopped by a start limit ({p.result})",
                f"systemctl reset-failed {unit} && systemctl start {unit}",
            )
        elif unit != AGENT_SERVICE and p.active_state != "active":
            yield Check(
                "units",
                "unit_inactive",
                f"{unit}: {p.load_state}, {p.active_state}/{p.sub_state}",
                f"systemctl enable --now {unit}",
            )
        else:
            yield ok("units", f"{unit}: {p.active_state}/{p.sub_state}")


def check_files(paths: AgentSettings, credential: Callable[[], object]) -> Iterator[Check]:
    problems = policy_path_problems(paths.lanes_file)
    for where, why in problems:
        what, _, command = why.partition(": run ")
        fix = command.strip("`") or f"replace {where} by the real file it points to"
        yield Check("files", "policy_file_untrusted", f"{where}: {what}", fix)
    if not problems:
        yield ok("files", f"{paths.lanes_file}: only root can change it")
    try:
        credential()
    except LaunchplaneError as exc:
        yield Check(
            "files",
            "credential_invalid",
            str(exc),
            "as the message says; a missing one: write the token (root, mode 0600) to "
            "/etc/launchplane/credentials/github-token",
        )
    else:
        yield ok("files", f"credential in {paths.credentials}: owner and mode right")


def check_lanes(declared: LanesFile) -> Iterator[Check]:
    for lane in declared.lanes:
        for f in lane_findings(lane, declared.policy, declared.lanes, declared.counts):
            yield Check(
                "lanes_file",
                f.code,
                f"lane {lane.lane_name}: {f.field}: {f.message}",
                "edit the lane or [policy] in lanes.toml (docs/runner-lane-baseline.md)",
            )
    yield ok("lanes_file", f"valid, {len(declared.lanes)} lane(s)")


def check_github(declared: LanesFile, github: GitHubPort) -> Iterator[Check]:
    """Lists each scope's runners (repository or organization): reachability and the *read*
    half of the permission registration needs (repository Administration, organization
    Self-hosted runners). Whether the credential may also *write* (mint a registration
    token) GitHub shows only by minting one, which doctor never does."""
    policy = declared.policy
    repos = sorted({lane.scope for lane in declared.lanes})
    repos = repos or sorted([*policy.allowed_repositories, *policy.allowed_organizations])[:1]
    if not repos:
        yield ok("github", "no repository or organization declared or allowed: nothing to ask")
    for repo in repos:
        try:
            runners = github.list_runners(repo)
        except GitHubAuthError as exc:
            yield Check(
                "github",
                "github_auth_failed",
                f"{repo}: {exc}",
                "the credential is revoked, expired or lacks the permission (repository: "
                "Administration; organization: Self-hosted runners): write a new one to "
                "/etc/launchplane/credentials/",
            )
        except GitHubNotFound as exc:
            yield Check(
                "github",
                "github_repository_not_visible",
                f"{repo}: {exc}",
                "grant the token (or App installation) access to the repository or organization",
            )
        except GitHubError as exc:
            yield Check(
                "github",
                "github_unreachable",
                f"{repo}: {exc}",
                "check the network, [github] api_url and proxy in lanes.toml",
            )
        else:
            yield ok(
                "github",
                f"{repo}: listed {len(runners)} runner(s) (the read permission; write is "
                "proven only by the next registration, never minted here)",
            )


def check_urls(
    declared: LanesFile, paths: AgentSettings, runner_directory: Callable[..., LocalRunnerDirectory]
) -> Iterator[Check]:
    api, web = paths.github.api_url, paths.github.web_url
    for where, why in endpoint_problems(api, web):
        yield Check(
            "urls",
            "github_urls_inconsistent",
            f"github.{where}: {why}",
            "set [github] web_url (and api_url only if needed) in lanes.toml",
        )
    if web.lower() != declared.policy.github_web_url.lower():
        yield Check(
            "urls",
            "web_url_override",
            f"the agent uses {web}, the helper registers at {declared.policy.github_web_url}",
            "drop LAUNCHPLANE_GITHUB_WEB_URL; set [github] web_url in lanes.toml",
        )
    for lane in declared.lanes:
        found = runner_directory(lane).runner_file
        expected = f"{declared.policy.github_web_url}/{lane.scope}"
        if found is not None and found.git_hub_url.rstrip("/").lower() != expected.lower():
            yield Check(
                "urls",
                "runner_url_mismatch",
                f"lane {lane.lane_name}: .runner says "
                f"{found.git_hub_url}, lanes.toml means {expected}",
                f"remove and re-create the lane: launchplane-agent remove --lane "
                f"{lane.lane_name} ..., then apply",
            )
    yield ok("urls", f"API {api}, web {web}")


def check_os(findings: Sequence[BaselineFinding]) -> Iterator[Check]:
    for f in findings:
        package = f.message.rsplit("Debian package ", 1)[-1].rstrip(")")
        yield Check("os_dependencies", f.code, f.message, f"apt-get install {package}")
    if not findings:
        yield ok("os_dependencies", "ldd, ldconfig, libicu, libssl, libkrb5, zlib present")


def check_clock(github_date: Callable[[], datetime], now: datetime) -> Iterator[Check]:
    try:
        date = github_date()
    except (LaunchplaneError, OSError, ValueError) as exc:
        yield Check(
            "clock",
            "clock_unchecked",
            f"no Date from GitHub: {exc}",
            "check the network and [github] proxy",
        )
        return
    skew = now - date
    if abs(skew) > MAX_SKEW:
        yield Check(
            "clock",
            "clock_skew",
            f"this host is {skew.total_seconds():+.0f} s off GitHub's Date",
            "enable time sync: timedatectl set-ntp true",
        )
    else:
        yield ok("clock", f"{skew.total_seconds():+.0f} s from GitHub's Date")


def check_orphans(orphans: Sequence[Orphan]) -> Iterator[Check]:
    for o in orphans:
        yield Check(
            "orphans",
            "orphan",
            f"{o.lane_name}: {o.as_row()}",
            f"launchplane-agent remove --lane {o.lane_name} --apply --idempotency-key "
            f"K --confirm 'remove {o.lane_name}'",
        )
    if not orphans:
        yield ok("orphans", "no undeclared lane carries this host's marks")


def check_audits(audit_dir: str, agent_uid: int | None) -> Iterator[Check]:
    """Read-only (reading through the store would quarantine a damaged file): the directory,
    its owner, every record valid, nothing quarantined."""
    root = Path(audit_dir)
    try:
        st = root.lstat()
    except OSError as exc:
        yield Check(
            "audit_store",
            "audit_store_missing",
            f"{root}: {exc.strerror}",
            "reinstall the package (it creates /var/lib/launchplane-agent/audits)",
        )
        return
    if not stat.S_ISDIR(st.st_mode) or (agent_uid is not None and st.st_uid != agent_uid):
        yield Check(
            "audit_store",
            "audit_store_not_writable",
            f"{root}: not a directory owned by the agent's user (uid {st.st_uid})",
            f"chown -R launchplane-agent: {root}",
        )
        return
    store, invalid, count = FilesystemAuditStore(root), [], 0
    for path in sorted(root.glob("*/*.json")):
        count += 1
        try:
            store.get(path.stem, path.parent.name)
        except (LaunchplaneError, OSError, ValueError):
            invalid.append(str(path))
    quarantined = sorted(str(p) for p in root.glob(".quarantine/*/*"))
    for where in invalid:
        yield Check(
            "audit_store",
            "audit_record_invalid",
            f"{where}: unreadable or not a valid record",
            "the next read moves it to .quarantine/; keep it for inspection",
        )
    if quarantined:
        yield Check(
            "audit_store",
            "audit_records_quarantined",
            f"{len(quarantined)} damaged record(s) in {root}/.quarantine",
            f"inspect them, then delete {root}/.quarantine",
        )
    if not invalid and not quarantined:
        yield ok("audit_store", f"{root}: {count} record(s), all valid")
