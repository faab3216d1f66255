"""GitHub's artifact attestations API: store a signed in-toto statement, look up those stored for
a digest.  ``gh attestation verify FILE --repo OWNER/REPO`` (online) finds a release's
provenance there; ``attach`` stores it, idempotently."""

from __future__ import annotations

from typing import Any

from .errors import GitHubError
from .transport import Transport

# A digest's attestations: one page is plenty for one release's statements.
MAX_ATTESTATIONS = 100


class AttestationsAPI(Transport):
    def attestations_for(self, sha256: str) -> list[dict[str, Any]]:
        """The Sigstore bundles stored for ``sha256`` in this repository (none: an empty list)."""
        url = f"{self.api_url}/repos/{self.repo}/attestations/sha256:{sha256}?per_page={MAX_ATTESTATIONS}"
        document, response = self._call("GET", url, f"attestations for sha256:{sha256[:12]}", dict, ok=(200, 404))
        if response.status_code == 404:
            return []
        found = document.get("attestations")
        if not isinstance(found, list) or len(found) > MAX_ATTESTATIONS:
            raise GitHubError(f"GitHub GET attestations: no list of at most {MAX_ATTESTATIONS} attestations")
        return [item["bundle"] for item in found if isinstance(item, dict) and isinstance(item.get("bundle"), dict)]

    def store_attestation(self, bundle: dict[str, Any], subject_sha256: str) -> None:
        """Store one Sigstore bundle (a DSSE envelope holding an in-toto statement about
        ``subject_sha256``).  A failed attempt may have stored it after all: before each retry
        the digest's attestations are looked up, so a retry never stores it twice."""
        url = f"{self.api_url}/repos/{self.repo}/attestations"
        what = "store attestation"

        def attempt() -> bool:
            with self._bounded(f"POST {what}", self.retry.timeout):
                response = self._send_once("POST", url, what, (201,), json={"bundle": bundle})
                document = self._json(response, "POST", what, dict)
            if not isinstance(document.get("id"), int):
                raise GitHubError(f"GitHub POST {what}: the answer has no attestation id")
            return True

        def stored() -> bool | None:
            return True if same_envelope(bundle, self.attestations_for(subject_sha256)) else None

        self._retrying(what, attempt, recover=stored)


def same_envelope(bundle: dict[str, Any], stored: list[dict[str, Any]]) -> bool:
    """Whether ``stored`` holds ``bundle``'s DSSE envelope (the same statement, the same signature)."""
    envelope = bundle.get("dsseEnvelope")
    return envelope is not None and any(item.get("dsseEnvelope") == envelope for item in stored)
