"""The loopback GitHub's data: releases, assets, the faults it can be told to inject, and the
answers and the request-body reading its routes share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

API_VERSION = "2022-11-28"
MUTATING = {"POST", "PATCH", "DELETE", "PUT"}
HOSTILE_ASSET_ID = "1/../../../some/dir/VICTIM.txt"
Answer = tuple[int, Any, dict[str, str]]


class Fault(StrEnum):
    """One-shot faults, queued with ``GitHubServer.fail(fault, times)`` (see the package docstring)."""

    CREATE_500 = "create_500"
    UPLOAD_502_STARTER = "upload_502_starter"
    UPLOAD_RESET = "upload_reset"
    RATE_LIMIT_429 = "rate_limit_429"
    SECONDARY_403 = "secondary_403"
    API_500 = "api_500"
    FORBIDDEN_403 = "forbidden_403"
    UPLOAD_RACE = "upload_race"
    PUBLISH_RACE = "publish_race"


@dataclass
class Asset:
    id: int
    name: str
    path: Path
    size: int = 0
    digest: str | None = None
    state: str = "starter"
    content_type: str = "application/octet-stream"


@dataclass
class Release:
    id: int
    tag_name: str
    name: str
    body: str
    draft: bool
    immutable: bool = False
    assets: dict[int, Asset] = field(default_factory=dict)


def already_exists(resource: str, field_name: str) -> Answer:
    """GitHub's 422 for a name that is taken: a release's tag, an asset's name."""
    error = {"resource": resource, "code": "already_exists", "field": field_name}
    return 422, {"message": "Validation Failed", "errors": [error]}, {}


def body_chunks(request: BaseHTTPRequestHandler, total: int, size: int = 1 << 20) -> Iterator[bytes]:
    """The request body, ``total`` bytes, in chunks, until it ends or the client stops sending."""
    remaining = total
    while remaining > 0:
        chunk = request.rfile.read(min(remaining, size))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def content_length(request: BaseHTTPRequestHandler) -> int:
    return int(request.headers.get("Content-Length") or 0)
