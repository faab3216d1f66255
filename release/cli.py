"""``u2netp-mirror``: the operator's console script (``pip install u2netp-mirror``).

Operators verify releases; they do not export, sign or publish, so that is all this offers,
in the conventions of ``sigstore`` and ``gh``: a subcommand, ``--help`` and ``--version``,
one line per error on stderr, and documented exit codes:

* 0: every check passed (with ``--allow-unpinned``, also when it printed a warning);
* 1: a check failed, or the release could not be fetched or read (the line says which);
* 2: the command line itself is wrong.

The maintainers' tasks (export, sign, attach, …) are Invoke tasks in a checkout's ``tasks.py``.
"""

from __future__ import annotations

from release.redact import install_log_redaction

install_log_redaction()

import argparse  # noqa: E402 (after the redaction is installed, on purpose)
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from mirror import __version__  # noqa: E402
from mirror.errors import ConfigError, MirrorError  # noqa: E402
from mirror.settings import UpstreamPin, load_yaml, shipped_defaults  # noqa: E402

from .redact import printable  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# A pins file is a few hundred bytes.
_MAX_PINS_BYTES = 64 << 10


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    # Long, as a declaration is: one statement per option, in the order --help shows them.
    parser = argparse.ArgumentParser(
        prog="u2netp-mirror",
        description="Verify a u2netp-mirror release: the U2NETP ONNX model, its manifest and their Sigstore "
        "signatures.",
        epilog="Exit status: 0 verified, 1 a check failed or the release could not be read, 2 usage error. "
        "The operator guide (docs/operator-guide.md in the project) says what each check proves.",
    )
    parser.add_argument("--version", action="version", version=f"u2netp-mirror {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check a release's signatures, signer, hashes and audited pins (downloading it first with --repo/--tag)",
        description="Check that the release files were signed by the expected identity, that the ONNX is the one "
        "the signed manifest describes, and that the manifest is the audited model. With --repo and --tag the "
        "release is downloaded into a staging directory first and moved into --dist only once every check passed.",
    )
    where = verify.add_argument_group("which release")
    where.add_argument("--repo", help="OWNER/NAME of the GitHub repository that published the release")
    where.add_argument("--tag", help="the release's tag, e.g. u2netp-mirror-v1.0.0")
    where.add_argument(
        "--dist",
        type=Path,
        help="directory with the release files; with --repo/--tag, where the verified download goes "
        "(default: . without --repo, u2netp-mirror-TAG with it)",
    )
    where.add_argument("--api-url", help="GitHub API base (default: $GITHUB_API_URL, then https://api.github.com)")
    where.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="the deadline of each request to GitHub: connect, headers and body "
        f"(default {float(shipped_defaults()['u2netp']['github']['timeout_seconds']):g}); a download's grows with "
        "its size at 1 MiB/s",
    )
    who = verify.add_argument_group("who must have signed it (default: the repository's release workflow at the tag)")
    who.add_argument("--cert-identity", help="the exact signer identity (certificate SAN)")
    who.add_argument("--cert-identity-regexp", help="a regular expression the signer identity must fully match")
    who.add_argument("--cert-oidc-issuer", help="the OIDC issuer (default: GitHub Actions)")
    trust = verify.add_argument_group("trust")
    trust.add_argument("--staging", action="store_true", help="trust Sigstore's staging instance, not production")
    trust.add_argument("--trust-config", type=Path, help="a sigstore ClientTrustConfig JSON file (private Sigstore)")
    trust.add_argument(
        "--offline", action="store_true", help="use the trust root cached by an earlier online run (no TUF refresh)"
    )
    trust.add_argument(
        "--pins",
        type=Path,
        help="a YAML file with the audited pins to hold the release to, as `u2netp: pin:` in defaults.yaml "
        "(default: the pins this version of u2netp-mirror ships)",
    )
    trust.add_argument(
        "--no-provenance",
        action="store_true",
        help="do not require the signed provenance statement (only for releases made before u2netp-mirror 0.2.0)",
    )
    trust.add_argument(
        "--require-evaluation",
        action="store_true",
        help="fail unless the release carries a signed evaluation that passed the promotion gate "
        "(without it, one is checked where present)",
    )
    trust.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="accept a release that is not the audited model (a demo or unpinned build), with a warning",
    )
    return parser


def _pins(path: Path | None) -> UpstreamPin:
    if path is None:
        return UpstreamPin.from_config(shipped_defaults()["u2netp"]["pin"])
    try:
        with path.open("rb") as stream:
            text = stream.read(_MAX_PINS_BYTES + 1)
        if len(text) > _MAX_PINS_BYTES:
            raise ConfigError(f"{path}: over {_MAX_PINS_BYTES >> 10} KiB; not a pins file")
        document = load_yaml(text.decode("utf-8"))
        pin = document["u2netp"]["pin"]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pins ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{path}: not a pins file (expected u2netp: pin: repo_url, commit, module_sha256, …)"
        ) from None
    # Each pin checked: an empty or null one is an error naming it, never a check skipped.
    return UpstreamPin.from_config(pin, where=f"{path}: u2netp.pin")


def _settings(args: argparse.Namespace):  # -> VerifySettings
    from .verify import VerifySettings

    downloading = bool(args.repo or args.tag)
    return VerifySettings.from_config(
        shipped_defaults()["u2netp"],
        dist=args.dist or Path(f"u2netp-mirror-{args.tag}" if downloading and args.tag else "."),
        repo=args.repo,
        tag=args.tag,
        api_url=args.api_url,
        identity=args.cert_identity,
        identity_regexp=args.cert_identity_regexp,
        issuer=args.cert_oidc_issuer,
        staging=args.staging,
        trust_config=args.trust_config,
        offline=args.offline,
        pins=_pins(args.pins),
        allow_unpinned=args.allow_unpinned,
        provenance=not args.no_provenance,
        require_evaluation=args.require_evaluation,
        timeout=args.timeout,
    )


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that every ``finally`` (the staging directory's) runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # sigstore-python's own warnings (an offline TUF load, …) would make an error a second line.
    logging.getLogger("sigstore").setLevel(logging.ERROR)
    start = time.perf_counter()
    try:
        from .console import console
        from .verify import run_verify, verdict

        with console() as reporter:
            checks = run_verify(_settings(args), reporter)
    except MirrorError as exc:
        print(f"error: {printable(exc, 2000)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing was moved into the release directory", file=sys.stderr)
        return 130
    except _Terminated:
        print("error: terminated; nothing was moved into the release directory", file=sys.stderr)
        return 143
    print(f"verify: {verdict(checks)} ({time.perf_counter() - start:.1f} s)", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
