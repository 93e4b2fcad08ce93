"""Why a plan is blocked: the stable blocker codes, and the next step a person takes for each."""

from __future__ import annotations

from enum import StrEnum


class BlockerCode(StrEnum):
    """A blocker's stable code (records and JSON carry the string)."""

    REPOSITORY_NOT_ALLOWED = "repository_not_allowed"
    ORGANIZATION_NOT_ALLOWED = "organization_not_allowed"
    RUNNER_GROUP_NOT_ALLOWED = "runner_group_not_allowed"
    RUNNER_GROUP_MISSING = "runner_group_missing"
    HOST_NOT_APPROVED = "host_not_approved"
    HOST_MISMATCH = "host_mismatch"
    REGISTRATION_ROOT_NOT_ALLOWED = "registration_root_not_allowed"
    SERVICE_USER_NOT_ALLOWED = "service_user_not_allowed"
    SERVICE_USER_MISSING = "service_user_missing"
    SERVICE_USER_MISMATCH = "service_user_mismatch"
    MISSING_MANAGED_LABEL = "missing_managed_label"
    MISSING_REQUIRED_LABEL = "missing_required_label"
    UNIT_NAME_MISMATCH = "unit_name_mismatch"
    DUPLICATE_LANE = "duplicate_lane"
    UNSAFE_LANE_NAME = "unsafe_lane_name"
    PATH_TRAVERSAL = "path_traversal"
    UNSAFE_ROOT = "unsafe_root"
    INVALID_LABEL = "invalid_label"
    INVALID_HOST_NAME = "invalid_host_name"
    INVALID_SERVICE_USER = "invalid_service_user"
    UNMANAGED_RUNNER = "unmanaged_runner"
    UNKNOWN_CONFLICT = "unknown_conflict"
    STALE_STATE = "stale_state"
    OBSERVATION_INCOMPLETE = "observation_incomplete"
    STALE_OBSERVATION = "stale_observation"
    BASELINE_MISSING = "baseline_missing"
    BASELINE_NOT_READY = "baseline_not_ready"
    MISSING_IDEMPOTENCY_KEY = "missing_idempotency_key"
    MISSING_CONFIRMATION = "missing_confirmation"
    RUNNER_BUSY = "runner_busy"
    NOTHING_TO_RESTART = "nothing_to_restart"
    UNIT_MASKED = "unit_masked"
    GITHUB_UNAVAILABLE = "github_unavailable"
    GITHUB_AUTH_FAILED = "github_auth_failed"
    GITHUB_RATE_LIMITED = "github_rate_limited"
    RUNNER_VERSION_REFUSED = "runner_version_refused"


B = BlockerCode
# Root cause first (docs/operations.md, "Reading a plan"): what the declaration, the
# allowlists or the host get wrong; then what observing GitHub and the host found; then the
# blockers derived from others (a baseline that is not ready, a missing key or confirmation).
ROOT_CAUSE_ORDER: tuple[BlockerCode, ...] = (
    # the declaration and the allowlists
    B.UNSAFE_LANE_NAME,
    B.PATH_TRAVERSAL,
    B.UNSAFE_ROOT,
    B.INVALID_HOST_NAME,
    B.INVALID_SERVICE_USER,
    B.INVALID_LABEL,
    B.DUPLICATE_LANE,
    B.UNIT_NAME_MISMATCH,
    B.REPOSITORY_NOT_ALLOWED,
    B.ORGANIZATION_NOT_ALLOWED,
    B.RUNNER_GROUP_NOT_ALLOWED,
    B.HOST_NOT_APPROVED,
    B.HOST_MISMATCH,
    B.REGISTRATION_ROOT_NOT_ALLOWED,
    B.SERVICE_USER_NOT_ALLOWED,
    B.MISSING_MANAGED_LABEL,
    B.MISSING_REQUIRED_LABEL,
    # the host
    B.SERVICE_USER_MISSING,
    B.SERVICE_USER_MISMATCH,
    B.UNIT_MASKED,
    # observation: GitHub, then what the observation shows
    B.GITHUB_AUTH_FAILED,
    B.GITHUB_RATE_LIMITED,
    B.GITHUB_UNAVAILABLE,
    B.OBSERVATION_INCOMPLETE,
    B.STALE_OBSERVATION,
    B.RUNNER_GROUP_MISSING,
    B.UNMANAGED_RUNNER,
    B.STALE_STATE,
    B.UNKNOWN_CONFLICT,
    B.RUNNER_BUSY,
    B.RUNNER_VERSION_REFUSED,
    # derived from the above, or from the command line
    B.BASELINE_MISSING,
    B.BASELINE_NOT_READY,
    B.NOTHING_TO_RESTART,
    B.MISSING_IDEMPOTENCY_KEY,
    B.MISSING_CONFIRMATION,
)
_RANK = {code: i for i, code in enumerate(ROOT_CAUSE_ORDER)}


def blocker_key(code: BlockerCode, message: str) -> tuple[int, str, str]:
    """The sort key of a plan's blockers: root cause first, then code and message."""
    return (_RANK[code], code.value, message)


# The next step a person takes for each code (tests/planner checks that every code has one).
NEXT_STEPS: dict[BlockerCode, str] = {
    B.REPOSITORY_NOT_ALLOWED: "add the repository to policy.allowed_repositories in lanes.toml",
    B.ORGANIZATION_NOT_ALLOWED: "add the organization to policy.allowed_organizations in "
    "lanes.toml",
    B.RUNNER_GROUP_NOT_ALLOWED: "add the runner group to policy.allowed_runner_groups in "
    "lanes.toml",
    B.RUNNER_GROUP_MISSING: "create the runner group in the organization's settings (Actions > "
    "Runner groups) or fix runner_group in lanes.toml, then plan again",
    B.HOST_NOT_APPROVED: "add the host to policy.approved_hosts in lanes.toml",
    B.HOST_MISMATCH: "declare the lane on the host it is meant for",
    B.REGISTRATION_ROOT_NOT_ALLOWED: "use a registration_root under an allowed root",
    B.SERVICE_USER_NOT_ALLOWED: "add the user to policy.allowed_service_users",
    B.SERVICE_USER_MISSING: "create the service user (the package's sysusers does this)",
    B.SERVICE_USER_MISMATCH: "fix ownership so the runner directory and process use service_user",
    B.MISSING_MANAGED_LABEL: "add 'launchplane-managed' to the lane's labels",
    B.MISSING_REQUIRED_LABEL: "add the missing label to the lane's labels",
    B.UNIT_NAME_MISMATCH: "remove systemd_unit_name or set it to launchplane-runner@<lane>.service",
    B.DUPLICATE_LANE: "declare each lane name and runner directory once",
    B.UNSAFE_LANE_NAME: "use a lowercase lane name matching [a-z0-9][a-z0-9._-]{0,127}",
    B.PATH_TRAVERSAL: "use a normal absolute registration_root without '..'",
    B.UNSAFE_ROOT: "use a dedicated registration root, never '/'",
    B.INVALID_LABEL: "use labels of letters, digits and ._:/+- only",
    B.INVALID_HOST_NAME: "use the host name as `hostname` prints it",
    B.INVALID_SERVICE_USER: "use a non-root system user name",
    B.UNMANAGED_RUNNER: "leave it alone, or remove it by hand and then apply",
    B.UNKNOWN_CONFLICT: "inspect the lane by hand; remove what is stale, then plan again",
    B.STALE_STATE: "remove the stale registration (remove the lane), then apply",
    B.OBSERVATION_INCOMPLETE: "fix access to GitHub / systemd and plan again",
    B.STALE_OBSERVATION: "plan again: the observation is too old to act on",
    B.BASELINE_MISSING: "make the host baseline observable, then plan again",
    B.BASELINE_NOT_READY: "fix the baseline findings listed in the record, then plan again",
    B.MISSING_IDEMPOTENCY_KEY: "pass --idempotency-key",
    B.MISSING_CONFIRMATION: "pass --confirm with the exact words shown",
    B.RUNNER_BUSY: "wait for the job (--wait SECONDS), or interrupt it with --drain",
    B.NOTHING_TO_RESTART: "apply the lane first",
    B.UNIT_MASKED: "someone masked the unit on purpose: find out why, then `systemctl unmask` "
    "it (add --runtime if it was masked with --runtime)",
    B.GITHUB_UNAVAILABLE: "GitHub could not be reached or answered 5xx: nothing is wrong with "
    "the lane itself; the next pass retries (see githubstatus.com or the proxy)",
    B.GITHUB_AUTH_FAILED: "GitHub refused the credential in /etc/launchplane/credentials: "
    "replace it with one that has 'Administration: read and write' on the repository",
    B.GITHUB_RATE_LIMITED: "wait: GitHub's rate limit resets at the time in the message; "
    "the timer's next pass after it retries",
    B.RUNNER_VERSION_REFUSED: "GitHub refuses runners below its minimum version: set the "
    'lane\'s runner_version_policy in lanes.toml to "latest" (or to the version GitHub '
    "offers, named in the message); the next pass then upgrades the lane",
}
