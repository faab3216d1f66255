"""Which Sigstore instance to trust: production, staging, or a ClientTrustConfig file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig

from mirror.errors import UsageError

from .errors import TrustRootError
from .redact import printable


@dataclass(frozen=True)
class SigstoreInstance:
    """Production by default; ``staging``; or ``trust_config`` for private deployments and tests.

    ``offline`` uses the trust root cached by an earlier online run instead of refreshing it
    over TUF (sigstore-python's cache).
    """

    staging: bool = False
    trust_config: Path | None = None
    offline: bool = False

    @classmethod
    def from_config(
        cls,
        sigstore: Mapping[str, Any],
        *,
        staging: bool = False,
        trust_config: str | Path | None = None,
        offline: bool = False,
    ) -> SigstoreInstance:
        """From ``u2netp.sigstore``: ``trust_config`` overrides the configured one."""
        chosen = trust_config or sigstore["trust_config"]
        return cls(staging=bool(staging), trust_config=Path(chosen) if chosen else None, offline=bool(offline))

    def __post_init__(self) -> None:
        if self.staging and self.trust_config is not None:
            raise UsageError("--staging and --trust-config are exclusive; pass one of them")

    @property
    def label(self) -> str:
        if self.trust_config is not None:
            return f"trust config {self.trust_config}"
        return ("Sigstore staging" if self.staging else "Sigstore production") + (" (offline)" if self.offline else "")

    @cached_property
    def client_trust_config(self) -> ClientTrustConfig:
        if self.trust_config is not None:
            try:
                return ClientTrustConfig.from_json(self.trust_config.read_text(encoding="utf-8"))
            except OSError as exc:
                raise TrustRootError(f"{self.trust_config}: cannot read the trust config ({exc.strerror})") from None
            except (ValueError, json.JSONDecodeError) as exc:
                raise TrustRootError(
                    f"{self.trust_config}: not a Sigstore ClientTrustConfig ({printable(exc, 160)})"
                ) from None
        # Both fetch the instance's current trust root over TUF (network; cached afterwards).
        fetch = ClientTrustConfig.staging if self.staging else ClientTrustConfig.production
        try:
            return fetch(self.offline)
        except SigstoreError as exc:
            how = (
                "no usable cached or built-in copy"
                if self.offline
                else "check the network, pass --offline to use the copy cached by an earlier run"
            )
            raise TrustRootError(
                f"the Sigstore trust root ({self.label}) could not be fetched over TUF "
                f"({printable(getattr(exc, 'message', exc), 120)}); {how}, or pass --trust-config FILE"
            ) from None
