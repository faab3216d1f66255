"""The OIDC issuer: discovery, its key set, ES256 identity tokens shaped like GitHub Actions',
and the Actions job's ambient token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from ._crypto import new_key

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


class OIDCIssuer:
    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self.key = new_key()
        # GitHub Actions' token endpoint: what a job with `id-token: write` would be given.
        self.actions_request_token = secrets.token_hex(16)
        self.actions_identity = ""

    @property
    def url(self) -> str:
        return self._url()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/auth",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def coordinate(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()

        return {
            "keys": [
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": "k1",
                    "alg": "ES256",
                    "use": "sig",
                    "x": coordinate(numbers.x),
                    "y": coordinate(numbers.y),
                }
            ]
        }

    def token(self, identity: str, issuer: str = GITHUB_ISSUER, lifetime: int = 600, **overrides: str) -> str:
        """An identity token for ``identity``, shaped like GitHub Actions' for a workflow URI.

        For ``https://github.com/OWNER/REPO/.github/workflows/F@REF`` the ``sub`` is
        ``repo:OWNER/REPO:ref:REF``, ``job_workflow_ref`` names the workflow, and the claims
        Fulcio turns into its GitHub extensions (repository, owner, ref, commit, run, …) are
        there, as on GitHub; anything else becomes the ``sub`` as it is.  ``overrides`` replace claims.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": identity,
            "aud": "sigstore",
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + lifetime,
        }
        workflow = identity.removeprefix("https://github.com/")
        if issuer == GITHUB_ISSUER and workflow != identity and "@" in workflow:
            repository, ref = workflow.split("/.github/")[0], workflow.split("@", 1)[1]
            commit = hashlib.sha256(f"{repository}@{ref}".encode()).hexdigest()[:40]  # a stand-in git commit id
            claims |= {
                "sub": f"repo:{repository}:ref:{ref}",
                "job_workflow_ref": workflow,
                "job_workflow_sha": commit,
                "workflow_ref": workflow,
                "workflow_sha": commit,
                "repository": repository,
                "repository_id": str(zlib.crc32(repository.encode())),
                "repository_owner": repository.split("/")[0],
                "repository_owner_id": str(zlib.crc32(repository.split("/")[0].encode())),
                "repository_visibility": "public",
                "ref": ref,
                "sha": commit,
                "event_name": "push",
                "run_id": "4242",
                "run_attempt": "1",
                "runner_environment": "github-hosted",
            }
        # A test may say what a reusable workflow's token would (another repository, another ref).
        claims |= overrides
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})

    def actions_id_token(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        """GET /actions/id-token?audience=sigstore, as ACTIONS_ID_TOKEN_REQUEST_URL serves it."""
        query = parse_qs(urlsplit(path).query)
        if authorization.lower() != f"bearer {self.actions_request_token}":
            return 403, {"message": "bad request token"}
        if query.get("audience") != ["sigstore"] or not self.actions_identity:
            return 400, {"message": "bad audience or no workflow identity"}
        return 200, {"value": self.token(self.actions_identity)}

    @property
    def actions_env(self) -> dict[str, str]:
        """The environment of a GitHub Actions job with `permissions: id-token: write`."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/actions/id-token",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.actions_request_token,
        }

    def claims(self, authorization: str) -> dict[str, Any]:
        if not authorization.startswith("Bearer "):
            raise ValueError("missing bearer token")
        return jwt.decode(
            authorization.removeprefix("Bearer "),
            self.key.public_key(),
            algorithms=["ES256"],
            audience="sigstore",
        )
