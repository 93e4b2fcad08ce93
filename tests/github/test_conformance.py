"""The emulator and the adapter are held to GitHub's official OpenAPI description."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agent.github import USED_OPERATIONS, GitHubClient, GitHubProtocolError, select_download
from tests.emulators.github_api import GitHubEmulator
from tests.emulators.github_app import ROUTES
from tests.emulators.openapi import VENDORED_SPEC, Coverage, SpecValidator, SpecViolation
from tests.github.conftest import ORG, PAT, REPO, MakeClient

SHARED_SPEC = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "github-openapi"
    / "actions-runners-repo-and-org.json"
)


def test_vendored_description_is_the_official_one() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip("../shared is not beside this checkout")
    assert VENDORED_SPEC.read_bytes() == SHARED_SPEC.read_bytes()


def test_every_emulated_route_is_a_described_operation(validator: SpecValidator) -> None:
    described = validator.operation_ids()
    emulated = {operation for _method, _pattern, operation, _handler in ROUTES}
    assert emulated <= described
    # Described but not emulated: what the product never calls (JIT configuration, and the
    # administration of runner groups, which stays with the organization's owners).
    assert described - emulated == {
        "actions/generate-runner-jitconfig-for-repo",
        "actions/generate-runner-jitconfig-for-org",
        "actions/create-self-hosted-runner-group-for-org",
        "actions/update-self-hosted-runner-group-for-org",
        "actions/delete-self-hosted-runner-group-from-org",
        "actions/list-repo-access-to-self-hosted-runner-group-in-org",
        "actions/set-repo-access-to-self-hosted-runner-group-in-org",
        "actions/add-repo-access-to-self-hosted-runner-group-in-org",
        "actions/remove-repo-access-to-self-hosted-runner-group-in-org",
        "actions/list-self-hosted-runners-in-group-for-org",
        "actions/set-self-hosted-runners-in-group-for-org",
        "actions/add-self-hosted-runner-to-group-for-org",
        "actions/remove-self-hosted-runner-from-group-for-org",
    }
    assert emulated >= USED_OPERATIONS
    org_operations = {op for op in USED_OPERATIONS if op.endswith("-for-org") or "-org" in op}
    assert len(org_operations) == 9  # list, get, delete, 2 tokens, downloads, labels, groups, app


def test_validation_catches_a_wrong_response(validator: SpecValidator) -> None:
    runner = {"id": 1, "name": "x", "os": "linux", "status": "online", "labels": []}  # no busy
    with pytest.raises(SpecViolation, match="busy"):
        validator.validate_response(
            "GET",
            f"/repos/{REPO}/actions/runners/1",
            query=[],
            request_headers={},
            request_body=None,
            status=200,
            headers={"content-type": "application/json"},
            body=json.dumps(runner).encode(),
        )
    with pytest.raises(SpecViolation, match=r"basic-error|not of type"):
        validator.validate_response(
            "GET",
            f"/repos/{REPO}/actions/runners/1",
            query=[],
            request_headers={},
            request_body=None,
            status=404,
            headers={"content-type": "application/json"},
            body=b'{"message": 404}',
        )
    with pytest.raises(SpecViolation, match="no such operation"):
        validator.validate_request("GET", "/repos/a/b/actions/runners/x/y/z", [], {}, None)


def test_the_running_emulator_refuses_to_serve_a_wrong_response(
    emulator: GitHubEmulator, client: GitHubClient
) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1")
    emulator.fault("corrupt", operation="actions/get-self-hosted-runner-for-repo")
    with httpx.Client(base_url=emulator.api_url) as http:
        answer = http.get(
            f"/repos/{REPO}/actions/runners/{runner.id}", headers={"Authorization": f"Bearer {PAT}"}
        )
    assert answer.status_code == 500
    assert "failed OpenAPI validation" in answer.json()["message"]
    assert len(emulator.validation_errors) == 1
    assert "'busy' is a required property" in emulator.validation_errors[0]
    emulator.app.validation_errors.clear()  # caught on purpose
    del client


def test_organization_answers_are_validated_too(emulator: GitHubEmulator) -> None:
    """A corrupt organization listing is caught by the same referee as a repository's."""
    emulator.state.add_runner(ORG, "org-lane-1")
    emulator.fault("corrupt", operation="actions/list-self-hosted-runners-for-org")
    with httpx.Client(base_url=emulator.api_url) as http:
        answer = http.get(
            f"/orgs/{ORG}/actions/runners", headers={"Authorization": f"Bearer {PAT}"}
        )
    assert answer.status_code == 500
    assert "'busy' is a required property" in emulator.validation_errors[0]
    emulator.app.validation_errors.clear()  # caught on purpose


def test_the_emulator_refuses_an_invalid_request(emulator: GitHubEmulator) -> None:
    runner = emulator.state.add_runner(REPO, "lane-1")
    with httpx.Client(base_url=emulator.api_url) as http:
        answer = http.put(
            f"/repos/{REPO}/actions/runners/{runner.id}/labels",
            json={"labels": "not-a-list"},
            headers={"Authorization": f"Bearer {PAT}"},
        )
    assert answer.status_code == 422
    assert "is not of type 'array'" in emulator.validation_errors[0]
    emulator.app.validation_errors.clear()


def test_the_adapter_meets_a_corrupt_answer_with_a_protocol_error(
    emulator: GitHubEmulator, make_client: MakeClient
) -> None:
    """Without validation in the way, the adapter's own parsing catches the same defect."""
    emulator.app.validator = None
    emulator.state.add_runner(REPO, "lane-1")
    emulator.fault("corrupt", operation="actions/list-self-hosted-runners-for-repo")
    with pytest.raises(GitHubProtocolError, match="busy"):
        make_client().list_runners(REPO)


def test_every_operation_the_adapter_uses_is_validated(
    emulator: GitHubEmulator,
    make_client: MakeClient,
    app_key: tuple[str, str],
    tmp_path: Path,
) -> None:
    """Drive each adapter call against a validating emulator with a private coverage record:
    together they must have validated every operationId the adapter declares, and nothing the
    description does not know."""
    from agent.github import load_credential
    from tests.github.conftest import APP_ID, INSTALLATION_ID, write_app_credentials

    coverage = Coverage()
    assert emulator.app.validator is not None
    emulator.app.validator = SpecValidator(emulator.app.validator.path, coverage)
    runner = emulator.state.add_runner(REPO, "lane-1")
    client = make_client()
    client.list_runners(REPO)
    client.runners_named(REPO, "lane-1")
    client.get_runner(REPO, runner.id)
    client.set_custom_labels(REPO, runner.id, ["launchplane-managed"])
    client.registration_token(REPO)
    client.remove_token(REPO)
    select_download(client.runner_downloads(REPO))
    client.delete_runner(REPO, runner.id)
    # the same calls for an organization's runners, and its runner groups
    org_runner = emulator.state.add_runner(ORG, "org-lane-1")
    group = emulator.state.add_runner_group(ORG, "build")
    client.list_runners(ORG)
    client.runners_named(ORG, "org-lane-1")
    assert client.get_runner(ORG, org_runner.id).runner_group_id == 1  # Default
    client.set_custom_labels(ORG, org_runner.id, ["launchplane-managed"])
    client.registration_token(ORG)
    client.remove_token(ORG)
    select_download(client.runner_downloads(ORG))
    assert client.runner_group_id(ORG, "BUILD") == group.id  # matched without case
    assert client.runner_group_id(ORG, "Default") == 1
    assert client.runner_group_id(ORG, "missing") is None
    client.delete_runner(ORG, org_runner.id)
    emulator.state.add_app(APP_ID, app_key[1], INSTALLATION_ID, [REPO, ORG])
    app_client = make_client(load_credential(write_app_credentials(tmp_path, app_key[0])))
    app_client.list_runners(REPO)
    app_client.list_runners(ORG)
    assert coverage.operations() == set(USED_OPERATIONS)
    assert all(documented for op, status, documented, _n in coverage.rows() if status < 300)
