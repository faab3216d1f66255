"""Build upstream's U2NETP from the checkout and load a checkpoint into it, safely.

Upstream code is imported from the checkout at run time, never copied here.
This module imports torch: import it only from code paths that need torch.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
import re
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, UpstreamError
from .settings import MODULE_IN_CHECKOUT
from .upstream import read_checkpoint_bytes

SELECTED_OUTPUT = "d0"
# The private name upstream's module runs under (see load_upstream_module).
UPSTREAM_MODULE_NAME = "_u2netp_mirror_upstream_u2net"
# How many offending keys an error message lists before it says "and N more".
_ERROR_SAMPLE = 5


class SaliencyHead(nn.Module):
    """Wraps U2NETP so the graph has one output: upstream's fused map d0 (index 0)."""

    def __init__(self, u2netp: nn.Module) -> None:
        super().__init__()
        self.u2netp = u2netp

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # Upstream calls the deprecated F.upsample; its UserWarning would land in the middle of
        # our output on every pass and says nothing a user can act on.  Only warnings raised
        # from upstream's own module are silenced.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=UPSTREAM_MODULE_NAME)
            return self.u2netp(image)[0]


@contextmanager
def _stand_in_for_torchvision() -> Iterator[None]:
    """Satisfy upstream's unused ``from torchvision import models`` when torchvision is absent.

    Upstream's u2net.py imports torchvision.models and never uses it; torchvision is a large
    dependency that must match the torch build exactly, so we do not require it.  The stand-in
    lives in ``sys.modules`` only while the module executes, and any use of it fails loudly.
    """
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return

    class _Unavailable(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise ImportError(f"torchvision is not installed (upstream used torchvision.models.{name})")

    package = types.ModuleType("torchvision")
    package.models = _Unavailable("torchvision.models")  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("torchvision", "torchvision.models")}
    sys.modules["torchvision"] = package
    sys.modules["torchvision.models"] = package.models
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_upstream_module(checkout: Path, source: bytes | None = None) -> types.ModuleType:
    """Execute ``model/u2net.py`` from ``checkout`` as a private module.

    ``source`` is the module's bytes as the audit read and hashed them: those bytes, not
    whatever the path holds by now, are what runs (read once).  Without it the file is read
    here, for callers that audit nothing (tests, the fixture, the bench).  The module gets a
    unique name, so it cannot clash with any other module called ``model``, and neither
    ``sys.path`` nor ``sys.modules`` keeps a trace of it afterwards.
    """
    path = checkout / MODULE_IN_CHECKOUT
    name = UPSTREAM_MODULE_NAME
    if source is None:
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise UpstreamError(f"{path}: cannot be loaded as a Python module ({exc.strerror})") from None
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise UpstreamError(f"{path}: cannot be loaded as a Python module ({type(exc).__name__}: {exc})") from None
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # some constructs (dataclasses, pickling) look themselves up here
    try:
        with _stand_in_for_torchvision(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(code, module.__dict__)  # noqa: S102 - upstream's audited module, from its hashed bytes
    except Exception as exc:  # upstream code: any failure is the checkout's problem
        raise UpstreamError(f"{path}: importing it failed ({type(exc).__name__}: {exc})") from exc
    finally:
        sys.modules.pop(name, None)
    return module


def build_u2netp(checkout: Path, source: bytes | None = None) -> nn.Module:
    """``U2NETP(3, 1)`` from the checkout (from ``source``, its audited bytes, when given), in eval mode."""
    module = load_upstream_module(checkout, source)
    factory = getattr(module, "U2NETP", None)
    if not isinstance(factory, type) or not issubclass(factory, nn.Module):
        raise UpstreamError(f"{checkout / MODULE_IN_CHECKOUT}: defines no nn.Module named U2NETP")
    try:
        return factory(3, 1).eval()
    except Exception as exc:
        raise UpstreamError(
            f"{checkout / MODULE_IN_CHECKOUT}: U2NETP(3, 1) failed ({type(exc).__name__}: {exc})"
        ) from exc


def _reason(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut at a word, not mid-word."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _read_checkpoint(path: Path, data: bytes | None) -> object:
    if data is None:
        data = read_checkpoint_bytes(path)
    try:
        # weights_only=True: tensors and plain containers only, so a malicious pickle
        # raises instead of running code.  There is deliberately no unsafe fallback.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notices; errors still raise
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if refused:
            raise CheckpointError(
                f"{path}: refused: the pickle references {refused.group(1)}; only tensors are loaded, "
                "so this file was not executed (is it really u2netp.pth?)"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (its pickle data is malformed)") from None
    except Exception as exc:
        # torch.load fails on foreign bytes in many ways (RuntimeError for a truncated zip,
        # IndexError or EOFError for text, OSError, ValueError, BadZipFile): all mean one thing.
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, truncated or another kind of file "
            f"({type(exc).__name__}: {_reason(exc)})"
        ) from None


def _state_dict_of(path: Path, loaded: object) -> dict[str, torch.Tensor]:
    # Training scripts often save {"state_dict": ..., "epoch": ...}; take the weights.
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not loaded:
        raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, not a non-empty state dict")
    bad = [key for key, value in loaded.items() if not isinstance(key, str) or not torch.is_tensor(value)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {_sample(map(str, bad))}")
    state = dict(loaded)
    # nn.DataParallel saves every key as "module.<name>"; strip it only when all keys have it.
    if all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _sample(items: Iterator[str] | list[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_ERROR_SAMPLE])
    more = len(items) - _ERROR_SAMPLE
    return shown + (f" and {more} more" if more > 0 else "")


def load_checkpoint(net: nn.Module, path: Path, data: bytes | None = None) -> None:
    """Load the checkpoint into ``net`` strictly; raise ``CheckpointError`` naming what does not fit.

    ``data`` is the file's bytes as already read and hashed (read once); ``path`` then only
    names the file in messages.  Without it the file is read here.
    """
    state = _state_dict_of(path, _read_checkpoint(path, data))
    expected = net.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_sample(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_sample(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_sample(mismatched)}")
    if problems:
        raise CheckpointError(f"{path}: does not fit U2NETP(3, 1) ({'; '.join(problems)})")
    non_finite = [
        key for key, value in state.items() if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if non_finite:
        raise CheckpointError(f"{path}: non-finite (NaN or inf) weights in {_sample(non_finite)}")
    net.load_state_dict(state, strict=True)
    net.eval()
