"""launchplane-evidence's .deb on a fresh Debian 12 with a real systemd (container
`lp-pkg-evidence`): install (alone: it does not need the agent), a record stored and read
back, upgrade with the PostgreSQL migration (first failing closed, then done), remove,
purge.

The container has a private network and no PostgreSQL of its own: a throwaway cluster on
the host (tests/evidence/postgres.py, unix socket only) has its socket directory bound
into it. The service starts on the filesystem store; before the upgrade root switches
`evidence.toml` to `store = "postgresql"` with a DSN that names no server: postinst's
migration fails, configure fails, the service stays stopped and the DSN's password is in
no output. Root then points the DSN at the cluster and `dpkg --configure -a` migrates
(Alembic, to head) and starts the service on PostgreSQL. The steps share one container and
run in file order; a step whose predecessor failed fails at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.evidence import factories as ef
from tests.evidence.postgres import Cluster, running_cluster
from tests.package.conftest import boot
from tests.package.debs import EVIDENCE_PACKAGE, PACKAGE, UPGRADE_SUFFIX, base_version, deb_path
from tests.package.evidence_client import (
    API,
    EVIDENCE_VENV,
    SERVICE,
    USER,
    listening,
    mint,
    request,
)
from tests.package.test_deb_lifecycle import dpkg, exists, props, stat, wants_links
from tests.sandbox import Bind, Sandbox

pytestmark = pytest.mark.systemd

MACHINE = "lp-pkg-evidence"
CONFIG = "/etc/launchplane/evidence.toml"
CREDENTIALS = "/etc/launchplane/evidence-credentials"
DSN_FILE = f"{CREDENTIALS}/postgresql-dsn"
STATE = "/var/lib/launchplane-evidence"
PORT = 8471
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 in /proc/net/tcp
LOCAL_EDIT = "# edited on this host by root: must survive upgrades\nstale_after_seconds = 7200\n"
DSN_PASSWORD = "S3cretDsnCanary"  # a canary: in no output (the cluster trusts its socket)
UNREACHABLE_DSN = f"postgresql://evidence:{DSN_PASSWORD}@/evidence?host=/run/lp-no-postgresql\n"
DATABASE = "evidence_pkg"
PG_SOCKET_DIR = "/run/lp-postgresql"
CLUSTER_DSN = f"postgresql://evidence:{DSN_PASSWORD}@/{DATABASE}?host={PG_SOCKET_DIR}\n"
HEAD_REVISION = "0001"
LAYOUT = (
    (CONFIG, "644", "root", "root"),
    (CREDENTIALS, "700", "root", "root"),
    (DSN_FILE, "600", "root", "root"),
    (STATE, "750", USER, USER),
)
RECORD = ef.record("completed", record_id="evidence-pkg-record-1")
RECORD_FILE = "/root/record.json"

_done: set[str] = set()
_tokens: dict[str, str] = {}


def after(step: str) -> None:
    if step not in _done:
        pytest.fail(f"the {step!r} step did not pass; this one builds on it", pytrace=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        running.create_database(DATABASE)
        yield running


@pytest.fixture(scope="module")
def box(base_deb: Path, upgrade_deb: Path, cluster: Cluster) -> Iterator[Sandbox]:
    sandbox = boot(
        MACHINE,
        Bind(base_deb.parent, "/dist", "ro"),
        Bind(cluster.socket_dir, PG_SOCKET_DIR, "rw"),
    )
    try:
        yield sandbox
    finally:
        sandbox.down()


def evidence_deb(version: str) -> str:
    return f"/dist/{deb_path(version, EVIDENCE_PACKAGE).name}"


def status(box: Sandbox) -> str:
    done = box.exec(
        "dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", EVIDENCE_PACKAGE, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "not-known"


def main_user(box: Sandbox) -> str:
    pid = props(box, SERVICE)["MainPID"]
    return box.exec("ps", "-o", "user=", "-p", pid, check=False).stdout.strip()


def query(cluster: Cluster, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(cluster.dsn(DATABASE)) as conn:
        return conn.execute(sql.encode()).fetchall()


def stored_files(box: Sandbox) -> str:
    return box.sh(f"find {STATE} -type f -printf '%P %s\\n' | sort").stdout


# ---------------------------------------------------------------------------------- install


def test_install_alone(box: Sandbox, base_deb: Path) -> None:
    rc, out = dpkg(box, "-i", evidence_deb(base_version()))
    assert rc == 0, out
    assert status(box) == f"ii {base_version()}"
    assert box.exec("dpkg-query", "-W", PACKAGE, check=False).returncode != 0

    name, _, uid, _, _, home, shell = box.exec("getent", "passwd", USER).stdout.split(":")
    assert (name, home, shell.strip()) == (USER, STATE, "/usr/sbin/nologin")
    assert int(uid) < 1000
    for path, *expected in LAYOUT:
        assert stat(box, path) == tuple(expected), path
    assert box.read_file(DSN_FILE) == ""
    assert CONFIG in box.exec("dpkg-query", "-W", "-f", "${Conffiles}", EVIDENCE_PACKAGE).stdout

    # Enabled, and running as its own user once systemd has its READY=1 (Type=notify).
    assert box.systemctl("is-enabled", SERVICE).stdout.strip() == "enabled"
    unit = box.show(SERVICE, "Type", "ActiveState", "SubState", "NotifyAccess")
    assert unit == {
        "Type": "notify",
        "ActiveState": "active",
        "SubState": "running",
        "NotifyAccess": "main",
    }
    assert main_user(box) == USER
    # Loopback only, by default.
    assert listening(box, PORT) == {LOOPBACK_HEX}
    assert request(box, "GET", "/healthz") == (200, {"ok": True})

    # Its venv: the web stack and the driver; the byte code compiled, not shipped.
    assert box.exec("readlink", "-f", "/usr/bin/launchplane-evidence").stdout.strip() == (
        f"{EVIDENCE_VENV}/bin/launchplane-evidence"
    )
    site = f"{EVIDENCE_VENV}/lib/python3.11/site-packages"
    for module in ("uvicorn", "starlette", "psycopg", "psycopg_binary", "alembic", "evidence"):
        assert exists(box, f"{site}/{module}"), module
    assert "__pycache__" not in box.exec("dpkg", "-L", EVIDENCE_PACKAGE).stdout
    assert box.sh(f"ls {site}/evidence/__pycache__/cli.*.pyc").stdout
    assert exists(box, f"/usr/share/doc/{EVIDENCE_PACKAGE}/evidence-service.md")
    _done.add("install")


def test_agent_package_carries_no_evidence_service(box: Sandbox, base_deb: Path) -> None:
    """The agent's .deb has none of the service's code or dependencies (the two venvs
    are separate); the evidence .deb ships no agent command."""
    agent = box.exec("dpkg-deb", "-c", f"/dist/{base_deb.name}").stdout
    carried = re.findall(
        r"site-packages/(evidence|uvicorn|starlette|psycopg\w*|alembic|sqlalchemy|uvloop|"
        r"httptools|mako)/",
        agent,
    )
    assert carried == []
    assert "site-packages/agent/" in agent  # the pattern can match: the tree is listed
    ours = box.exec("dpkg-deb", "-c", evidence_deb(base_version())).stdout
    assert "usr/bin/launchplane-agent" not in ours
    assert "launchplane-runner@" not in ours


def test_a_record_stored_and_read_back(box: Sandbox) -> None:
    after("install")
    _tokens["write"] = mint(box, "--host", ef.HOST, "--repository", ef.REPO)
    _tokens["read"] = mint(box, "--read")
    box.write_file(RECORD_FILE, ef.body(RECORD).decode())

    post = ("POST", f"{API}/audits")
    assert request(box, *post, key=RECORD.record_id, body_file=RECORD_FILE)[0] == 401
    code, _ = request(
        box, *post, token=_tokens["write"], key=RECORD.record_id, body_file=RECORD_FILE
    )
    assert code == 201
    code, body = request(box, "GET", f"{API}/audits/{RECORD.record_id}", token=_tokens["read"])
    assert code == 200
    assert body["record_id"] == RECORD.record_id
    assert body["record"]["status"] == "completed"

    # tokens.json belongs to the service user; no secret on disk or in the journal.
    assert stat(box, f"{STATE}/tokens.json") == ("600", USER, USER)
    for secret in _tokens.values():
        assert box.exec("grep", "-rqF", secret, STATE, CREDENTIALS, check=False).returncode == 1
        journal = box.exec("journalctl", "--no-pager", "-u", SERVICE, check=False).stdout
        assert secret not in journal
    _done.add("record")


# ---------------------------------------------------------------------------------- upgrade


def test_upgrade_runs_the_migration_and_fails_closed(box: Sandbox, cluster: Cluster) -> None:
    """store = postgresql: postinst migrates before the start; with no server the configure
    fails and the service stays stopped (no new code on an old schema)."""
    after("record")
    box.sh(f"printf %s '{LOCAL_EDIT}' >> {CONFIG}")
    box.sh(f"echo 'store = \"postgresql\"' >> {CONFIG}")
    box.sh(f"umask 077; cat > {DSN_FILE}", input=UNREACHABLE_DSN)

    rc, out = dpkg(box, "-i", evidence_deb(base_version() + UPGRADE_SUFFIX))
    assert rc != 0, out
    assert "migrating the PostgreSQL schema" in out
    assert "lp-no-postgresql" in out  # the migration tried the configured server
    assert DSN_PASSWORD not in out
    assert status(box) == f"iF {base_version()}{UPGRADE_SUFFIX}"
    assert props(box, SERVICE)["ActiveState"] in {"inactive", "failed"}
    assert query(cluster, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'evidence%'") == [
        (0,)
    ]
    _done.add("upgrade-refused")


def test_upgrade_migrates_and_keeps_config_and_tokens(box: Sandbox, cluster: Cluster) -> None:
    """The DSN fixed, `dpkg --configure -a` migrates the schema to head and starts the
    service on PostgreSQL; root's evidence.toml, the tokens and the old store are kept."""
    after("upgrade-refused")
    config = box.read_file(CONFIG)
    files = stored_files(box)
    box.sh(f"umask 077; cat > {DSN_FILE}", input=CLUSTER_DSN)

    rc, out = dpkg(box, "--configure", "-a")
    assert rc == 0, out
    assert status(box) == f"ii {base_version()}{UPGRADE_SUFFIX}"
    assert "migrating the PostgreSQL schema" in out
    assert DSN_PASSWORD not in out
    assert query(cluster, "SELECT version_num FROM alembic_version") == [(HEAD_REVISION,)]
    assert "Configuration file" not in out
    assert box.read_file(CONFIG) == config
    assert not box.sh("ls /etc/launchplane/ | grep -E 'dpkg-(dist|new|old)' || true").stdout

    assert props(box, SERVICE)["ActiveState"] == "active"
    assert main_user(box) == USER
    assert box.systemctl("is-enabled", SERVICE).stdout.strip() == "enabled"
    assert stored_files(box) == files  # the filesystem store stays on disk, untouched
    # The tokens minted before the upgrade write to and read from the new store.
    post = {"token": _tokens["write"], "key": RECORD.record_id, "body_file": RECORD_FILE}
    assert request(box, "POST", f"{API}/audits", **post)[0] == 201
    assert request(box, "POST", f"{API}/audits", **post)[0] == 200  # a replay
    code, body = request(box, "GET", f"{API}/audits/{RECORD.record_id}", token=_tokens["read"])
    assert (code, body["record_id"]) == (200, RECORD.record_id)
    assert query(cluster, "SELECT record_id FROM evidence_records") == [(RECORD.record_id,)]
    journal = box.exec("journalctl", "--no-pager", "-u", SERVICE, check=False).stdout
    assert DSN_PASSWORD not in journal
    for path, *expected in LAYOUT:
        assert stat(box, path) == tuple(expected), path
    _done.add("upgrade")


# ---------------------------------------------------------------------------------- remove


def test_remove_stops_it_and_keeps_the_store(box: Sandbox) -> None:
    after("upgrade")
    files = stored_files(box)
    config = box.read_file(CONFIG)

    rc, out = dpkg(box, "-r", EVIDENCE_PACKAGE)
    assert rc == 0, out
    assert status(box).startswith("rc")
    now = props(box, SERVICE)
    assert now["ActiveState"] in {"inactive", "failed"}
    assert now["LoadState"] == "not-found"
    assert not box.exec("pgrep", "-u", USER, check=False).stdout
    assert listening(box, PORT) == set()
    assert not exists(box, f"/usr/lib/{EVIDENCE_PACKAGE}")
    assert not exists(box, "/usr/bin/launchplane-evidence")
    # The store and its tokens, the settings and the DSN credential are kept.
    assert stored_files(box) == files
    assert box.read_file(CONFIG) == config
    assert stat(box, DSN_FILE) == ("600", "root", "root")
    _done.add("remove")


def test_purge_removes_store_config_and_credential(box: Sandbox, cluster: Cluster) -> None:
    after("remove")
    users = box.exec("getent", "passwd", USER).stdout

    rc, out = dpkg(box, "-P", EVIDENCE_PACKAGE)
    assert rc == 0, out
    assert status(box) in {"not-known", "un"} or status(box).startswith("un")
    for path in (STATE, CREDENTIALS, CONFIG, "/etc/launchplane"):
        assert not exists(box, path), path
    assert wants_links(box) == []
    assert not box.sh(
        "ls -R /var/lib/systemd/deb-systemd-helper-enabled/ | grep launchplane || true"
    ).stdout
    # Kept, as for the agent's users (a reused uid must not inherit files); the database
    # is the DBA's, never touched by the package.
    assert box.exec("getent", "passwd", USER).stdout == users
    assert query(cluster, "SELECT record_id FROM evidence_records") == [(RECORD.record_id,)]
