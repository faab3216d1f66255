"""A small but real Sigstore stack on 127.0.0.1 for the tests, the bench and the demo.

Written in Python (rather than wrapping @sigstore/mock in Node) so a session needs no second
runtime.  One module per service, the way sigstore-python gives each service its module, each
doing the real cryptography that sigstore-python checks:

* ``oidc.py``: discovery, a key set, ES256 identity tokens (aud "sigstore") and GitHub Actions'
  ambient token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL) for the CI path;
* ``fulcio.py`` (POST /api/v2/signingCert): checks the Bearer token and the CSR's proof of
  possession, issues a code-signing leaf whose SAN is the identity (for GitHub Actions tokens
  the workflow URI, as real Fulcio does), with an embedded SCT from its CT log;
* ``rekor.py`` (POST /api/v1/log/entries): canonical entries in an RFC 6962 Merkle tree, with a
  signed entry timestamp, an inclusion proof and a signed checkpoint;
* ``tsa.py`` (POST /api/v1/timestamp): RFC 3161 timestamps;
* ``trust.py``: the ClientTrustConfig that points sigstore-python at this stack.

``SigstoreStack`` is the facade: one server, a route table, the services behind it.  Two stacks
have unrelated keys, so one stack's bundles do not verify against the other's trust root.
"""

from __future__ import annotations

from typing import Any

from ..http import Answer, LoopbackService, Request, Route
from .fulcio import Fulcio
from .oidc import GITHUB_ISSUER, OIDCIssuer
from .rekor import Rekor
from .trust import trust_config
from .tsa import TimestampAuthority

__all__ = ["GITHUB_ISSUER", "SigstoreStack"]


class SigstoreStack(LoopbackService):
    """Start with ``start()``, stop with ``stop()``; ``url`` is http://127.0.0.1:PORT."""

    def __init__(self) -> None:
        super().__init__()
        self.oidc = OIDCIssuer(lambda: self.url)
        self.fulcio = Fulcio(self.oidc)
        self.rekor = Rekor(lambda: self.url)
        self.tsa = TimestampAuthority()

    @property
    def url(self) -> str:
        return self.root

    @url.setter
    def url(self, url: str) -> None:
        self.root = url  # a stack never started can still name where it would be

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/.well-known/openid-configuration"): lambda request: (200, self.oidc.discovery()),
            ("GET", "/jwks"): lambda request: (200, self.oidc.jwks()),
            ("GET", "/actions/id-token"): lambda request: self.oidc.actions_id_token(
                request.target, request.headers.get("Authorization", "")
            ),
            ("POST", "/api/v2/signingCert"): lambda request: self.fulcio.signing_cert(
                request.headers.get("Authorization", ""), request.body
            ),
            ("POST", "/api/v1/log/entries"): lambda request: self.rekor.add_entry(request.body),
            ("POST", "/api/v1/timestamp"): self._timestamp,
        }

    def _timestamp(self, request: Request) -> Answer:
        return 200, self.tsa.timestamp(request.body), {"Content-Type": "application/timestamp-reply"}

    # -- what tests and the demo use -------------------------------------------------------

    def token(self, identity: str, issuer: str = GITHUB_ISSUER, lifetime: int = 600, **claims: str) -> str:
        return self.oidc.token(identity, issuer, lifetime, **claims)

    def trust_config(self) -> dict[str, Any]:
        return trust_config(self.url, self.fulcio, self.rekor, self.tsa)

    @property
    def actions_env(self) -> dict[str, str]:
        return self.oidc.actions_env

    @property
    def actions_request_token(self) -> str:
        return self.oidc.actions_request_token

    @property
    def actions_identity(self) -> str:
        return self.oidc.actions_identity

    @actions_identity.setter
    def actions_identity(self, identity: str) -> None:
        self.oidc.actions_identity = identity

    @property
    def rejected_issuers(self) -> set[str]:
        return self.fulcio.rejected_issuers

    @property
    def leaves(self) -> list[bytes]:
        return self.rekor.leaves

    @property
    def tsa_root(self) -> Any:
        return self.tsa.root

    @property
    def tsa_leaf(self) -> Any:
        return self.tsa.leaf
