"""The agent's errors, under the shared base.

Hierarchy::

    helper.contract.errors.LaunchplaneError
    └── AgentError                 the agent could not do what was asked
        ├── AuditConflict          a record exists with a different payload, or the store is unsafe
        ├── AuditNotFound          no record of that id
        ├── AuditStoreError        the store could not be written (path and errno in the text)
        ├── ProofStale             a key's stored proof no longer holds (a new key acts again)
        ├── PassLocked             another reconcile pass holds the lock
        └── PlanStepFailed         a step of an applied plan failed (carries the step name)

GitHub's errors live in agent.github.errors, also under AgentError's base.
"""

from __future__ import annotations

from helper.contract.errors import LaunchplaneError


class AgentError(LaunchplaneError):
    code = "agent_error"


class AuditConflict(AgentError):
    code = "audit_conflict"


class AuditNotFound(AgentError):
    code = "audit_not_found"


class AuditStoreError(AgentError):
    code = "audit_store_failed"


class ProofStale(AgentError):
    """An explicit idempotency key's `completed` no longer holds on a fresh observation."""

    code = "proof_stale"


class PassLocked(AgentError):
    code = "pass_locked"


class PlanStepFailed(AgentError):
    """A step of a plan (`Step`) failed while it was applied; not the helper's StepFailed,
    which is a transient unit's step inside one helper verb."""

    code = "plan_step_failed"

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")
