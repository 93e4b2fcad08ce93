"""The classifier tells the seven observed shapes apart, one test each."""

from __future__ import annotations

from agent.classify import classify, labels_match, repository_of_url
from agent.contracts import Shape
from tests.planner import factories as f


def test_absent() -> None:
    assert classify(f.desired(), f.absent()).shape is Shape.ABSENT


def test_github_only() -> None:
    obs = f.absent(github=f.inventory(f.runner(status="offline")))
    assert classify(f.desired(), obs).shape is Shape.GITHUB_ONLY


def test_local_service_only() -> None:
    obs = f.observed(github=f.inventory())
    assert classify(f.desired(), obs).shape is Shape.LOCAL_SERVICE_ONLY


def test_supervised_active() -> None:
    assert classify(f.desired(), f.observed()).shape is Shape.SUPERVISED_ACTIVE


def test_supervised_inactive() -> None:
    obs = f.observed(unit=f.unit(active=False, active_state="failed"))
    assert classify(f.desired(), obs).shape is Shape.SUPERVISED_INACTIVE


def test_mismatched_labels_on_missing_and_on_extra_custom_label() -> None:
    missing = f.observed(github=f.inventory(f.runner(labels=f.LABELS[:-1])))
    extra = f.observed(github=f.inventory(f.runner(labels=(*f.LABELS, "gpu"))))
    assert classify(f.desired(), missing).shape is Shape.MISMATCHED_LABELS
    assert classify(f.desired(), extra).shape is Shape.MISMATCHED_LABELS


def test_unknown_conflict_lists_its_reasons() -> None:
    obs = f.observed(
        github=f.inventory(f.runner(), f.runner(runner_id=7)),
        unit=f.unit(marked=False),
    )
    result = classify(f.desired(), obs)
    assert result.shape is Shape.UNKNOWN_CONFLICT
    assert any("share the lane name" in r for r in result.reasons)
    assert any("ownership marks" in r for r in result.reasons)


def test_labels_compare_case_insensitively() -> None:
    upper = tuple(label.upper() for label in f.LABELS)
    assert labels_match(f.desired(), f.runner(labels=upper))


def test_repository_of_url_handles_github_and_enterprise_urls() -> None:
    assert repository_of_url("https://github.com/Owner/Repo/") == "owner/repo"
    assert repository_of_url("http://127.0.0.1:8080/owner/repo.git") == "owner/repo"
    assert repository_of_url("https://ghe.example/owner/repo") == "owner/repo"
