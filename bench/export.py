"""The export row: `invoke export` end to end against a bare `torch.onnx.export` script, and where the time goes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from .common import PYTHON, BenchModel, Row, alternate, invoke_args, paired_summary, run

# The floor: import, build, load, export; no audit, no checker, no parity check, no hashing.
BARE_EXPORT = """
import importlib.util, sys, warnings
import torch
warnings.simplefilter("ignore")
spec = importlib.util.spec_from_file_location("u2net_bare", sys.argv[1] + "/model/u2net.py")
module = importlib.util.module_from_spec(spec)
import types
tv = types.ModuleType("torchvision"); tv.models = types.ModuleType("torchvision.models")
sys.modules.setdefault("torchvision", tv); sys.modules.setdefault("torchvision.models", tv.models)
spec.loader.exec_module(module)
net = module.U2NETP(3, 1).eval()
net.load_state_dict(torch.load(sys.argv[2], map_location="cpu", weights_only=True))
class D0(torch.nn.Module):
    def __init__(self, net):
        super().__init__(); self.net = net
    def forward(self, x):
        return self.net(x)[0]
axes = {0: "batch", 2: "height", 3: "width"}
torch.onnx.export(D0(net).eval(), (torch.zeros(1, 3, 320, 320),), sys.argv[3], dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["saliency_map"],
                  dynamic_axes={"input": axes, "saliency_map": axes})
"""


def _timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def validation_profile(model: BenchModel, scratch: Path) -> list[str]:
    """The parity validation taken apart, in process: checker, session, each runtime's passes."""
    import numpy as np
    import onnx
    import onnxruntime
    import torch

    from mirror.model import SaliencyHead, build_u2netp, load_checkpoint
    from mirror.settings import DEFAULT_VALIDATION_SHAPES
    from mirror.validate import seeded_images, torch_reference

    net = build_u2netp(model.upstream)
    load_checkpoint(net, model.checkpoint)
    head = SaliencyHead(net).eval()
    model_bytes = (scratch / "inproc" / "u2netp_mirror_v1.onnx").read_bytes()
    _, checker = _timed(lambda: onnx.checker.check_model(onnx.load_model_from_string(model_bytes), full_check=True))
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session, created = _timed(
        lambda: onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    )
    parts = [f"onnx.checker (full) {checker:.3f} s", f"onnxruntime session {created:.3f} s"]
    for index, image in enumerate(seeded_images(0, DEFAULT_VALIDATION_SHAPES)):
        shape = "x".join(str(d) for d in (image.shape[0], *image.shape[2:]))
        _, ort_time = _timed(lambda image=image: session.run(None, {"input": image.numpy()}))
        if index == 0:
            parts.append(f"{shape}: onnxruntime {ort_time:.2f} s (torch's side comes from the trace)")
            continue
        _, one = _timed(lambda image=image: torch_reference(head, image, None))
        with torch.no_grad():
            _, two = _timed(lambda image=image: np.asarray(head(image)))
        parts.append(f"{shape}: onnxruntime {ort_time:.3f} s, torch {one:.3f} s on 1 thread ({two:.3f} s on all)")
    return parts


def witness_runs(model: BenchModel, scratch: Path) -> tuple[int, float] | None:
    """How many onnxruntime runs the upstream witness makes, and their time alone, in process.

    None where the checkout holds no test set.  The runs are the part of the witness no
    overlap can hide: they need the exported model and keep both cores busy.
    """
    from mirror.witness import prepare, witness_session

    test_set = prepare(model.upstream)
    if test_set is None or not test_set.cases:
        return None
    session = witness_session((scratch / "inproc" / "u2netp_mirror_v1.onnx").read_bytes())
    session.run(None, {"input": test_set.cases[0].network_input})  # the first run pays for allocations
    start = time.perf_counter()
    for case in test_set.cases:
        session.run(None, {"input": case.network_input})
    return len(test_set.cases), time.perf_counter() - start


def bench_export(model: BenchModel, scratch: Path, repeat: int) -> Row:
    from mirror.pipeline import run_export
    from mirror.reporting import Lines
    from mirror.settings import ExportSettings

    dist = scratch / "export-dist"
    ours, floor = alternate(
        lambda: run(
            invoke_args(
                "export", "--upstream", str(model.upstream), "--checkpoint", str(model.checkpoint), "--dist", str(dist)
            ),
            env=model.env,
        ),
        lambda: run(
            [PYTHON, "-c", BARE_EXPORT, str(model.upstream), str(model.checkpoint), str(scratch / "bare.onnx")]
        ),
        repeat,
    )
    steps: list[str] = []
    settings = ExportSettings(
        upstream=model.upstream,
        checkpoint=model.checkpoint,
        dist=scratch / "inproc",
        pin=model.pin,  # type: ignore[arg-type]
    )
    run_export(settings, Lines(lambda line: steps.append(re.sub(r"\S*/inproc/", "<dist>/", line))))
    our_imports, bare_imports = alternate(
        lambda: run([PYTHON, "-c", "import invoke, torch, onnx, onnxruntime"]),
        lambda: run([PYTHON, "-c", "import torch"]),
        3,
    )
    # Whole seconds of host noise land on either side of a round; the median of per-round
    # ratios cancels the slow drift, and the interval says how far the rounds agree.
    ratio, _, summary = paired_summary(ours, floor)
    timed = (re.search(r"upstream witness: .*\(([\d.]+) s\)", line) for line in steps)
    witness = next((float(found[1]) for found in timed if found), 0.0)
    runs = witness_runs(model, scratch)
    lower_bound = (
        []
        if runs is None
        else [
            f"the witness's {runs[0]} onnxruntime runs alone take {runs[1]:.2f} s on this CPU "
            f"({runs[1] / runs[0]:.2f} s each, both cores busy), {runs[1] / floor.median:.2f}× the bare script's "
            f"whole time: with the witness no export can be faster than {(floor.median + runs[1]) / floor.median:.2f}× "
            "the bare script"
        ]
    )
    return Row(
        "export end to end: `invoke export` vs bare `torch.onnx.export` script",
        ours,
        floor,
        "s",
        ratio,
        "≤ 1.2×",
        ratio <= 1.2,
        [
            summary,
            f"the upstream witness (an onnxruntime run of the exported model per upstream photo, compared with "
            f"upstream's saved maps; the bare script has no counterpart) took {witness:.2f} s in process; without "
            f"it the ratio of the medians would be {(ours.median - witness) / floor.median:.2f}",
            *lower_bound,
            "steps, in process: " + "; ".join(steps),
            "the validation, in process: " + "; ".join(validation_profile(model, scratch)),
            f"start-up and imports: {our_imports.median:.2f} s for ours (invoke, torch, onnx, onnxruntime), "
            f"{bare_imports.median:.2f} s for the bare script (torch)",
        ],
        model=model.label,
    )
