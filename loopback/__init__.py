"""Servers on 127.0.0.1 that behave like the real services, for the tests, the bench and the demo.

* ``loopback.sigstore.SigstoreStack``: OIDC, Fulcio, CT log, Rekor v1 and a timestamp
  authority doing the real cryptography sigstore-python checks.
* ``loopback.github.GitHubServer``: GitHub's Releases REST API, with switches for the faults
  and the hostile answers the client must survive.

Nothing here is used by a release: the production code talks to Sigstore and GitHub.
"""
