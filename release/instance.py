"""Which Sigstore instance to trust: production, staging, or a ClientTrustConfig file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sigstore.models import ClientTrustConfig

from mirror.errors import MirrorError


@dataclass(frozen=True)
class SigstoreInstance:
    """Production by default; ``staging``; or ``trust_config`` for private deployments and tests."""

    staging: bool = False
    trust_config: Path | None = None

    def __post_init__(self) -> None:
        if self.staging and self.trust_config is not None:
            raise MirrorError("--staging and --trust-config are exclusive; pass one of them")

    @property
    def label(self) -> str:
        if self.trust_config is not None:
            return f"trust config {self.trust_config}"
        return "Sigstore staging" if self.staging else "Sigstore production"

    @cached_property
    def client_trust_config(self) -> ClientTrustConfig:
        if self.trust_config is not None:
            try:
                return ClientTrustConfig.from_json(self.trust_config.read_text(encoding="utf-8"))
            except OSError as exc:
                raise MirrorError(f"{self.trust_config}: cannot read the trust config ({exc.strerror})") from None
            except (ValueError, json.JSONDecodeError) as exc:
                first = (str(exc).strip().splitlines() or ["invalid"])[0]
                raise MirrorError(f"{self.trust_config}: not a Sigstore ClientTrustConfig ({first})") from None
        # Both fetch the instance's current trust root over TUF (network; cached afterwards).
        return ClientTrustConfig.staging() if self.staging else ClientTrustConfig.production()
