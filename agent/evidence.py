"""Optional delivery of audit records to the Launchplane evidence endpoint, through a local
spool so that a delivery failure loses nothing (see docs/service-boundary.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from agent.audit_store import RECORD_ID_RE, write_new_file
from agent.contracts import RunnerLaneMaintainerAuditRecord
from agent.logs import get_logger
from helper.contract.redact import REDACTOR

ROUTE = "/v1/evidence/runner-lane-maintainer/audits"
AUTHZ_ACTION = "runner_lane_maintainer_audit.write"
TOKEN_FILE = "launchplane-evidence-token"  # noqa: S105 - a file name

log = get_logger(__name__)


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # record id -> why it stays spooled


class EvidenceSpool:
    """Records wait here (one file each, written atomically) until the endpoint accepts them."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def add(self, record: RunnerLaneMaintainerAuditRecord) -> None:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        body = REDACTOR.redact(record.model_dump_json()).encode()
        write_new_file(self.directory, f"{record.record_id}.json", body)

    def pending(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p.stem for p in self.directory.glob("*.json") if RECORD_ID_RE.fullmatch(p.stem)
        )

    def deliver(self, client: httpx.Client, token: SecretStr) -> DeliveryReport:
        """POST every spooled record with its id as Idempotency-Key. Accepted (201), replayed
        (200) records leave the spool; anything else stays for the next pass."""
        report = DeliveryReport()
        for record_id in self.pending():
            path = self.directory / f"{record_id}.json"
            body = path.read_bytes()
            try:
                response = client.post(
                    ROUTE,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "Idempotency-Key": record_id,
                        "Authorization": f"Bearer {token.get_secret_value()}",
                    },
                )
            except httpx.HTTPError as exc:
                report.kept[record_id] = f"network: {type(exc).__name__}"
                continue
            if response.status_code in (200, 201):
                os.unlink(path)
                report.delivered.append(record_id)
            else:
                report.kept[record_id] = f"HTTP {response.status_code}"
        if report.kept:
            log.warning(
                "evidence.kept", count=len(report.kept), reasons=sorted(set(report.kept.values()))
            )
        return report
