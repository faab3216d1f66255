"""Every configured value checked once, where it is loaded: one line naming the key and what it accepts.

Invoke casts an ``INVOKE_U2NETP_*`` override to the type of the default it replaces and no
further: ``INVOKE_U2NETP_GITHUB_ATTEMPTS=0`` is an int, ``…_TIMEOUT_SECONDS=-5`` a float, and
an expected-signer template with a ``{0}`` in it a string.  Used unchecked, such values surfaced
deep inside a run as ``AssertionError``, ``ValueError`` or ``IndexError`` tracebacks.  Both entry
points (``tasks.py`` and the operator's console script) call ``check_config`` before any work.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

_HEX40_OR_64 = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# The fields an expected-signer template may name (sigstore.cert_identity).
SIGNER_FIELDS = frozenset({"repo", "tag"})


def _key(section: str, name: str) -> str:
    return f"u2netp.{section}.{name}" if section else f"u2netp.{name}"


def _number(
    config: Mapping[str, Any], section: str, name: str, *, low: float, high: float, low_open: bool = False
) -> float:
    value = config[name]
    where = _key(section, name)
    shown = f"{where}={value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{shown}: not a number; expected one in {_range(low, high, low_open)}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{shown}: not a number; expected one in {_range(low, high, low_open)}") from None
    if not math.isfinite(number) or number < low or number > high or (low_open and number == low):
        raise ConfigError(f"{shown}: out of range; expected a number in {_range(low, high, low_open)}")
    return number


def _range(low: float, high: float, low_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def _whole(config: Mapping[str, Any], section: str, name: str, *, low: int, high: int) -> int:
    value = config[name]
    shown = f"{_key(section, name)}={value!r}"
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{shown}: not a whole number; expected one from {low} to {high}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ConfigError(f"{shown}: out of range; expected a whole number from {low} to {high}")
    return number


def check_pin(pin: Any, where: str = "u2netp.pin") -> None:
    """The audited pins: each present one well formed; empty or null is an error, never "skip".

    ``checkpoint_sha256`` may be absent (nobody has audited a checkpoint yet: every build is
    then ``unpinned``); the other four must be there.
    """
    # Invoke's config sections are DataProxy objects: mapping-like, not Mappings.
    if not (isinstance(pin, Mapping) or hasattr(pin, "keys")):
        raise ConfigError(f"{where}: expected a mapping of pins (repo_url, commit, module_sha256, …)")
    rules = (
        ("repo_url", re.compile(r"https://[^\s]+"), "an https:// URL"),
        ("commit", _HEX40_OR_64, "a full git commit id (40 or 64 lower-case hex digits)"),
        ("module_sha256", _HEX64, "a sha256 (64 lower-case hex digits)"),
        ("license_sha256", _HEX64, "a sha256 (64 lower-case hex digits)"),
        ("checkpoint_sha256", _HEX64, "a sha256 (64 lower-case hex digits)"),
    )
    for name, shape, what in rules:
        if name not in pin:
            if name == "checkpoint_sha256":
                continue
            raise ConfigError(f"{where}.{name}: missing; expected {what}")
        value = pin[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            hint = (
                " (to leave the checkpoint unpinned, remove the key: every build is then 'unpinned'; "
                "`invoke pin-checkpoint` sets it)"
                if name == "checkpoint_sha256"
                else ""
            )
            raise ConfigError(f"{where}.{name}: empty; a pin is a value, never 'skip this check'{hint}")
        if not isinstance(value, str) or not shape.fullmatch(value):
            raise ConfigError(f"{where}.{name}={str(value)[:80]!r}: expected {what}")


def check_signer_template(template: object, where: str = "u2netp.sigstore.cert_identity") -> str:
    """An identity, or a template naming only {repo} and {tag}."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(
            f"{where}: empty; expected the signer identity, e.g. a workflow URI with {{repo}} and {{tag}}"
        )
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"{where}={template[:120]!r}: not a valid template ({exc})") from None
    if unknown := sorted(fields - SIGNER_FIELDS):
        raise ConfigError(
            f"{where}={template[:120]!r}: names {', '.join('{' + name + '}' for name in unknown)}; "
            "only {repo} and {tag} are filled in"
        )
    return template


def check_config(config: Mapping[str, Any]) -> None:
    """Check the ``u2netp`` config (defaults.yaml, invoke.yaml, environment); ``ConfigError`` if wrong."""
    try:
        check_pin(config["pin"])
        from .checkpoint_pin import witnesses_from_config

        witnesses_from_config(config["checkpoint_witnesses"])
        export = config["export"]
        _number(export, "export", "tolerance", low=0.0, high=1.0, low_open=True)
        _number(export, "export", "mean_tolerance", low=0.0, high=1.0, low_open=True)
        _whole(export, "export", "seed", low=0, high=2**32 - 1)
        evaluate = config["evaluate"]
        _whole(evaluate, "evaluate", "batch_size", low=1, high=4096)
        _whole(evaluate, "evaluate", "threads", low=0, high=1024)
        _whole(evaluate, "evaluate", "latency_samples", low=1, high=100_000)
        _whole(evaluate, "evaluate", "grid_rows", low=1, high=100)
        gate = evaluate["gate"]
        for name in ("mae", "s_measure", "max_f", "mean_e", "weighted_f", "max_abs_diff", "mask_disagreement"):
            _number(gate, "evaluate.gate", name, low=0.0, high=1.0)
        sigstore = config["sigstore"]
        check_signer_template(sigstore["cert_identity"])
        issuer = sigstore["cert_oidc_issuer"]
        if not isinstance(issuer, str) or not re.fullmatch(r"https?://[^\s]+", issuer):
            raise ConfigError(f"u2netp.sigstore.cert_oidc_issuer={str(issuer)[:80]!r}: expected an https:// URL")
        github = config["github"]
        _whole(github, "github", "attempts", low=1, high=20)
        _number(github, "github", "backoff_seconds", low=0.0, high=3600.0)
        _number(github, "github", "max_wait_seconds", low=0.0, high=3600.0)
        _number(github, "github", "timeout_seconds", low=0.0, high=3600.0, low_open=True)
    except KeyError as exc:
        raise ConfigError(f"u2netp: the setting {exc.args[0]!r} is missing from the config") from None
    except TypeError:
        raise ConfigError("u2netp: a section of the config is not a mapping; compare it with defaults.yaml") from None
