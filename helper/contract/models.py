"""The one strict base model both processes build on, and the one `ValidationError` formatter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Immutable, no unknown fields, no coercion: what crosses a boundary is what was meant."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def field_path(loc: tuple[int | str, ...], whole: str) -> str:
    """`lanes[0].labels[2]`; `whole` names the input itself when the error is about all of it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or whole


def validation_problems(
    exc: ValidationError, whole: str = "(input)", limit: int | None = None
) -> list[tuple[str, str]]:
    """(field path, reason) of each error; never the input's values (they may hold a secret)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    return [(field_path(e["loc"], whole), e["msg"]) for e in errors[:limit]]


def describe_validation(
    exc: ValidationError, whole: str = "(input)", limit: int | None = None
) -> str:
    """The problems on one line: `field: reason; field: reason`."""
    return "; ".join(f"{where}: {why}" for where, why in validation_problems(exc, whole, limit))
