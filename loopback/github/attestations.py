"""GitHub's artifact attestations API: ``POST /repos/{owner}/{repo}/attestations`` stores a
Sigstore bundle (a DSSE envelope holding an in-toto statement), and
``GET /repos/{owner}/{repo}/attestations/sha256:{hex}`` lists those whose statement has that
subject digest (404 when there is none), as ``gh attestation verify`` looks them up."""

from __future__ import annotations

import base64
import binascii
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from .state import Answer, body_chunks, content_length


class AttestationRoutes:
    """Mixed into ``GitHubServer``: the state it reads is the server's."""

    def _store_attestation(self, request: BaseHTTPRequestHandler) -> Answer:
        if self.attestations_forbidden:
            return self._error(403, "Resource not accessible by integration")  # no `attestations: write`
        try:
            bundle = json.loads(b"".join(body_chunks(request, content_length(request))))["bundle"]
            envelope = bundle["dsseEnvelope"]
            statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
            digests = {subject["digest"]["sha256"] for subject in statement["subject"]}
        except (ValueError, KeyError, TypeError, binascii.Error):
            return self._error(422, "Invalid request: the bundle holds no DSSE envelope with an in-toto statement")
        with self._lock:
            identifier = next(self._ids)
            self.attestations.append({"id": identifier, "bundle": bundle, "digests": digests})
        return 201, {"id": identifier}, {}

    def _attestations_for(self, algorithm: str, digest: str) -> Answer:
        found = [
            {"bundle": record["bundle"], "repository_id": 1, "bundle_url": None}
            for record in self.attestations
            if algorithm == "sha256" and digest in record["digests"]
        ]
        if not found:
            return self._error(404, "Not Found")
        return 200, {"attestations": found}, {}

    def attestations_stored(self) -> list[dict[str, Any]]:
        """The stored bundles, oldest first (what the tests inspect)."""
        return [record["bundle"] for record in self.attestations]
