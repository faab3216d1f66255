"""The OIDC identity token for keyless signing, and the certificate identity it will yield.

The token is a bearer secret: it is never printed, logged, written or put in an error.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jwt
from sigstore.oidc import IdentityError, IdentityToken, Issuer, detect_credential

from mirror.settings import shipped_defaults

from .errors import IdentityTokenError
from .instance import SigstoreInstance

TOKEN_ENV = "SIGSTORE_ID_TOKEN"  # noqa: S105 (the variable's name, not a secret)
# GitHub Actions' OIDC issuer, as configured (u2netp.sigstore.cert_oidc_issuer, the one place it is set).
GITHUB_ACTIONS_ISSUER = str(shipped_defaults()["u2netp"]["sigstore"]["cert_oidc_issuer"])
_SIGNING_IDENTITY_HELP = (
    "no identity token for signing: set SIGSTORE_ID_TOKEN or pass --identity-token-file, run in GitHub "
    "Actions with `permissions: id-token: write`, or run from an interactive terminal to log in"
)


def read_token_file(path: Path) -> str:
    """An identity token kept in a file (so it is not on a command line); one line, whitespace trimmed."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise IdentityTokenError(f"{path}: cannot read the identity token file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise IdentityTokenError(f"{path}: the identity token file is not text") from None
    if not token:
        raise IdentityTokenError(f"{path}: the identity token file is empty")
    return token


def _unusable(raw: str, exc: Exception) -> IdentityTokenError:
    """Why sigstore refused the token, said precisely; never the token itself."""
    try:
        claims = jwt.decode(raw, options={"verify_signature": False, "verify_exp": False, "verify_aud": False})
    except jwt.PyJWTError:
        return IdentityTokenError("the identity token is not a JSON Web Token (is it the right value?)")
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires < time.time():
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
        return IdentityTokenError(
            f"the identity token expired at {when} ({time.time() - expires:,.0f} s ago); get a fresh one"
        )
    audience = claims.get("aud")
    if audience != "sigstore" and not (isinstance(audience, list) and "sigstore" in audience):
        return IdentityTokenError("the identity token is not for Sigstore (its audience is not 'sigstore')")
    return IdentityTokenError(f"the identity token is not usable: {exc}")


def resolve_identity_token(
    explicit: str | None, instance: SigstoreInstance, *, interactive: bool | None = None
) -> IdentityToken:
    """The token to sign with, from (in order) ``explicit``/$SIGSTORE_ID_TOKEN, ambient CI
    credentials, or the browser flow — the last only when stdin is a terminal, so a CI job or
    any non-interactive shell fails at once instead of hanging."""
    raw = explicit or os.environ.get(TOKEN_ENV) or None
    if raw is None:
        try:
            raw = detect_credential()
        except IdentityError as exc:
            raise IdentityTokenError(f"ambient credential detection failed: {exc}") from None
    if raw is None:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            raise IdentityTokenError(_SIGNING_IDENTITY_HELP)
        try:
            issuer = Issuer(instance.client_trust_config.signing_config.get_oidc_url())
            return issuer.identity_token()
        except Exception as exc:  # the browser flow's failures are many and all mean the same
            raise IdentityTokenError(f"interactive login failed ({type(exc).__name__})") from None
    try:
        return IdentityToken(raw.strip())
    except IdentityError as exc:
        raise _unusable(raw.strip(), exc) from None


def certificate_identity(token: IdentityToken) -> str:
    """The SAN Fulcio will put in the certificate for ``token``, by Fulcio's rules.

    GitHub Actions tokens give the workflow URI (job_workflow_ref), not their ``sub``;
    e-mail issuers give the address; other issuers give ``sub``.
    """
    claims = jwt.decode(str(token), options={"verify_signature": False})
    if claims.get("iss") == GITHUB_ACTIONS_ISSUER and claims.get("job_workflow_ref"):
        return f"https://github.com/{claims['job_workflow_ref']}"
    return token.identity
