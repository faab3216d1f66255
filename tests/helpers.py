"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from mirror.fixture import Fixture
from mirror.hashing import sha256_file
from mirror.settings import ExportSettings, UpstreamPin

ROOT = Path(__file__).resolve().parent.parent

# The release's public file names, spelled out here once: the tests' guard on the public
# contract (tests/test_contract.py holds mirror.contract to them); every other test uses these.
MODEL_ID = "u2netp_mirror_v1"
ONNX = "u2netp_mirror_v1.onnx"
MANIFEST = "u2netp_mirror_v1.manifest.json"
ONNX_BUNDLE = "u2netp_mirror_v1.onnx.sigstore.json"
MANIFEST_BUNDLE = "u2netp_mirror_v1.manifest.json.sigstore.json"
PROVENANCE = "u2netp_mirror_v1.provenance.sigstore.json"
LICENCE = "u2netp_mirror_v1.LICENSE"
NOTICE = "u2netp_mirror_v1.NOTICE"
EVALUATION = "u2netp_mirror_v1.evaluation.json"
EVALUATION_BUNDLE = "u2netp_mirror_v1.evaluation.sigstore.json"
OMS = "u2netp_mirror_v1.oms.sigstore.json"
MODEL_CARD = "u2netp_mirror_v1.model-card.md"


def audited_pins(fixture: Fixture) -> UpstreamPin:
    """The fixture's pins as if a maintainer had configured them: its exports are 'audited' builds."""
    return replace(fixture.pin, source="config")


def settings_for(fixture: Fixture, dist: Path, **changes) -> ExportSettings:
    """Export settings for ``fixture`` with its pins as configured pins: an "audited" build.

    Unless the test gives a pin of its own, the checkpoint pin is the sha256 of the checkpoint
    file as it is now, as a maintainer would have pinned it: a test that changes or replaces
    the file is about that file, not about a pin mismatch (tests of the pin set one).
    """
    pin = audited_pins(fixture)
    checkpoint = Path(changes.get("checkpoint", fixture.checkpoint))
    if "pin" not in changes and checkpoint.is_file():
        pin = replace(pin, checkpoint_sha256=sha256_file(checkpoint))
    base = ExportSettings(upstream=fixture.root, checkpoint=fixture.checkpoint, dist=dist, pin=pin, entrypoint="pytest")
    return replace(base, **changes)


_LIMITED = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    env_override: dict[str, str] | None = None,
    timeout: float = 300,
    file_size_limit: int | None = None,
):
    """Run ``python -m invoke ARGS`` in ``cwd`` (tasks.py is found through --search-root).

    ``env`` adds to the current environment; ``env_override`` replaces it.  Standard input is
    closed, as in CI, so nothing can wait for a prompt.  ``file_size_limit`` (bytes) makes every
    write past it fail with EFBIG, as a full disk would fail it (Python ignores SIGXFSZ).
    """
    full_env = env_override if env_override is not None else {**os.environ, **(env or {})}
    command = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args]
    if file_size_limit is not None:
        # Set in a Python that then becomes the command (exec): preexec_fn is unsafe while the
        # tests' loopback servers run threads in this process.
        command = [sys.executable, "-c", _LIMITED.format(limit=file_size_limit), *command]
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def fixture_pin_env(fixture: Fixture) -> dict[str, str]:
    """Environment overriding the config pins with the fixture's, as a user would.

    The commit, module and licence pins are environment variables; the checkpoint pin, whose
    key defaults.yaml leaves out until a checkpoint is audited (and Invoke reads variables only
    for keys it knows), comes from a runtime config file (INVOKE_RUNTIME_CONFIG) beside the fixture.
    """
    import json

    runtime = fixture.root.parent / f"{fixture.root.name}.checkpoint-pin.yaml"
    # The checkpoint as it is now (a test may have replaced it), as a maintainer would have pinned it.
    sha256 = sha256_file(fixture.checkpoint) if fixture.checkpoint.is_file() else fixture.pin.checkpoint_sha256
    runtime.write_text(json.dumps({"u2netp": {"pin": {"checkpoint_sha256": sha256}}}))  # JSON is YAML
    return {
        "INVOKE_U2NETP_PIN_COMMIT": fixture.pin.commit,
        "INVOKE_U2NETP_PIN_MODULE_SHA256": fixture.pin.module_sha256,
        "INVOKE_U2NETP_PIN_LICENSE_SHA256": fixture.pin.license_sha256,
        "INVOKE_RUNTIME_CONFIG": str(runtime),
    }


def pins_file(pin: UpstreamPin, directory: Path) -> Path:
    """A pins file for ``u2netp-mirror verify --pins`` holding ``pin``."""
    import json

    path = directory / "pins.json"
    fields = ("repo_url", "commit", "module_sha256", "license_sha256", "checkpoint_sha256")
    values = {name: getattr(pin, name) for name in fields if getattr(pin, name) is not None}
    path.write_text(json.dumps({"u2netp": {"pin": values}}))  # JSON is YAML
    return path


def files_in(directory: Path) -> list[str]:
    """Every file and directory under ``directory`` (relative), hidden temp files included."""
    if not directory.exists():
        return []
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


RELEASE_IDENTITY = (
    "https://github.com/example/u2netp-mirror/.github/workflows/release.yml@refs/tags/u2netp-mirror-v1.0.0"
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


# What `invoke sign` is told about the release it signs for: verify will expect its workflow.
FOR_RELEASE = ("--repo", "example/u2netp-mirror", "--tag", "u2netp-mirror-v1.0.0")


def signer_for(identity: str = RELEASE_IDENTITY, issuer: str = GITHUB_ISSUER):
    """The signer verify (and so sign) expects: by default the release workflow at the test tag."""
    from release.checks import ExpectedSigner

    return ExpectedSigner(issuer=issuer, identity=identity)


def without_ambient_credentials() -> dict[str, str]:
    """os.environ minus everything that could hand sigstore a token (CI detection included)."""
    drop = (
        "SIGSTORE_ID_TOKEN",
        "GITHUB_ACTIONS",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
        "BUILDKITE",
        "GITLAB_CI",
        "CIRCLECI",
    )
    return {key: value for key, value in os.environ.items() if key not in drop and not key.startswith("SIGSTORE_ID")}
