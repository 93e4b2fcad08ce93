"""A unit's states as systemd names them (org.freedesktop.systemd1.Unit), plus `unknown`:
what the agent records when systemd could not be asked (which blocks every plan)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field


class LoadState(StrEnum):
    STUB = "stub"
    LOADED = "loaded"
    NOT_FOUND = "not-found"
    BAD_SETTING = "bad-setting"
    ERROR = "error"
    MERGED = "merged"
    MASKED = "masked"
    UNKNOWN = "unknown"


class ActiveState(StrEnum):
    ACTIVE = "active"
    RELOADING = "reloading"
    INACTIVE = "inactive"
    FAILED = "failed"
    ACTIVATING = "activating"
    DEACTIVATING = "deactivating"
    MAINTENANCE = "maintenance"
    REFRESHING = "refreshing"
    UNKNOWN = "unknown"


class UnitFileState(StrEnum):
    ENABLED = "enabled"
    ENABLED_RUNTIME = "enabled-runtime"
    LINKED = "linked"
    LINKED_RUNTIME = "linked-runtime"
    ALIAS = "alias"
    MASKED = "masked"
    MASKED_RUNTIME = "masked-runtime"
    STATIC = "static"
    DISABLED = "disabled"
    INVALID = "invalid"
    INDIRECT = "indirect"
    GENERATED = "generated"
    TRANSIENT = "transient"
    BAD = "bad"
    NONE = ""  # no unit file (not found)


# systemd reports strings: these fields take them (and records read back) by value; any other
# string is refused, so an observation systemd describes in an unknown way blocks.
LoadStateField = Annotated[LoadState, Field(strict=False)]
ActiveStateField = Annotated[ActiveState, Field(strict=False)]
UnitFileStateField = Annotated[UnitFileState, Field(strict=False)]
