"""The promotion gate decides, and evaluate survives the inputs a real image folder holds."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import onnx
import pytest

from evaluation.errors import EvaluationError, EvaluationUsageError
from evaluation.gate import Gate, judge
from evaluation.run import EvaluationSettings, evaluate
from mirror.reporting import Lines
from tests.evaluation.conftest import _saliency_graph, scene
from tests.helpers import run_cli

GATE = Gate.shipped()
METRICS = {"mae": 0.05, "s_measure": 0.85, "max_f": 0.9, "mean_e": 0.9, "weighted_f": 0.85}


def _result(candidate=METRICS, baseline=METRICS, agreement=None, with_baseline=True, with_masks=True) -> dict:
    return {
        "inputs": {"baseline": {"file": "b.onnx"} if with_baseline else None},
        "metrics": {"candidate": dict(candidate), "baseline": dict(baseline)} if with_masks else None,
        "agreement": agreement or {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "mask_disagreement": 0.0},
    }


def test_the_same_model_is_promoted():
    verdict = judge(_result(), GATE)
    assert verdict["promoted"] and verdict["summary"] == "promoted: every rule holds"
    assert len(verdict["rules"]) == 7 and all(rule["passed"] for rule in verdict["rules"])


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"mae": 0.0551}, "mae at most 0.005 higher"),
        ({"s_measure": 0.8449}, "s_measure at most 0.005 lower"),
        ({"max_f": 0.8949}, "max_f at most 0.005 lower"),
        ({"weighted_f": 0.80}, "weighted_f at most 0.005 lower"),
    ],
)
def test_a_metric_worse_by_more_than_its_margin_is_not_promoted(change, failing):
    verdict = judge(_result(candidate={**METRICS, **change}), GATE)
    assert not verdict["promoted"] and failing in verdict["summary"]
    within = {name: METRICS[name] + (0.004 if name == "mae" else -0.004) for name in change}
    assert judge(_result(candidate={**METRICS, **within}), GATE)["promoted"]  # inside the margin


def test_same_network_means_the_maps_agree():
    disagreeing = {"max_abs_diff": 0.3, "mean_abs_diff": 0.01, "mask_disagreement": 0.02}
    verdict = judge(_result(agreement=disagreeing), GATE)
    assert not verdict["promoted"] and "same network: largest |candidate - baseline|" in verdict["summary"]
    other_network = Gate(GATE.margins, same_network=False, max_abs_diff=0.0, mask_disagreement=0.0)
    assert judge(_result(agreement=disagreeing), other_network)["promoted"]


def test_nothing_measured_is_a_failure():
    nothing = judge(_result(with_baseline=False, with_masks=False), GATE)
    assert not nothing["promoted"] and "nothing was measured" in nothing["summary"]
    no_baseline = judge(_result(with_baseline=False), GATE)
    assert not no_baseline["promoted"] and "no baseline" in no_baseline["summary"]
    other_network = Gate(GATE.margins, same_network=False, max_abs_diff=0.0, mask_disagreement=0.0)
    unjudged = judge(_result(with_masks=False), other_network)
    assert not unjudged["promoted"] and "nothing was measured" in unjudged["summary"]


@pytest.mark.slow
def test_the_command_line_exits_0_only_when_promoted(labelled, tmp_path, reference):
    args = ["evaluate", "--candidate", str(reference), "--baseline", str(reference)]
    args += ["--images", str(labelled / "Image"), "--masks", str(labelled / "Mask"), "--out", "report"]
    promoted = run_cli(*args, "--latency-samples", "2", "--threads", "1", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "evaluate: promoted: every rule holds" in promoted.stdout
    report = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    assert report["verdict"]["promoted"] is True and len(report["verdict"]["rules"]) == 7
    assert "**Verdict: promoted: every rule holds.**" in (tmp_path / "report" / "evaluation.md").read_text()
    alone = run_cli("evaluate", "--candidate", str(reference), "--images", str(labelled / "Image"), cwd=tmp_path)
    assert alone.returncode == 1 and "nothing was measured" in alone.stdout
    strict = run_cli(*args, "--latency-samples", "1", cwd=tmp_path, env={"INVOKE_U2NETP_EVALUATE_GATE_MAE": "-1"})
    assert strict.returncode == 2 and "u2netp.evaluate.gate.mae='-1': out of range" in strict.stderr


# -- hostile and broken inputs --------------------------------------------------------------


def _bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG header declaring ``width`` x ``height`` in a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def awkward(tmp_path) -> Path:
    """An image folder with every kind of trouble beside two good scenes."""
    images, masks = tmp_path / "Image", tmp_path / "Mask"
    images.mkdir()
    masks.mkdir()
    for seed in (1, 2):
        image, mask = scene(seed)
        image.save(images / f"good{seed}.png")
        mask.save(masks / f"good{seed}.png")
    (images / "bomb.png").write_bytes(_bomb_png())
    image, _ = scene(3)
    image.save(images / "bombmask.png")
    (masks / "bombmask.png").write_bytes(_bomb_png())
    image, mask = scene(4)
    image.save(images / "othersize.png")
    mask.resize((64, 48)).save(masks / "othersize.png")
    (images / "empty.jpg").write_bytes(b"")
    image.save(tmp_path / "whole.png")
    (images / "truncated.png").write_bytes((tmp_path / "whole.png").read_bytes()[:200])
    return tmp_path


def test_hostile_images_and_masks_are_skipped_with_a_reason(awkward, reference, tmp_path):
    lines: list[str] = []
    result = evaluate(
        EvaluationSettings(
            candidate=reference,
            baseline=reference,
            images=awkward / "Image",
            masks=awkward / "Mask",
            out=tmp_path / "out",
            threads=1,
            latency_samples=1,
        ),
        Lines(lines.append),
    )
    reasons = {problem["file"]: problem["reason"] for problem in result["skipped"]}
    assert reasons["bomb.png"].startswith("image over the 64 MP cap (30000x30000; a decompression bomb?)")
    assert reasons["bombmask.png"].startswith("mask over the 64 MP cap")
    assert reasons["othersize.png"].startswith("the mask is 64x48, the image 128x96")
    assert reasons["empty.jpg"].startswith("not a readable image")
    assert reasons["truncated.png"].startswith("not a readable image")
    assert result["inputs"]["images"]["evaluated"] == 4 and result["inputs"]["images"]["with_masks"] == 2
    assert result["verdict"]["promoted"]  # the good images were scored, as if nothing had happened
    assert any(line.startswith("warning: bomb.png: image over the 64 MP cap") for line in lines)


def _with_metadata(source: Path, target: Path, preprocessing: str) -> Path:
    model = onnx.load(source)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "preprocessing", preprocessing
    onnx.save(model, target)
    return target


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"resize": [60000, 60000]}, "its inputs would be 60000x60000"),
        ({"mean": [float("nan"), 0.456, 0.406]}, "mean and std must be finite"),
        ({"std": [0.229, 0.0, 0.225]}, "mean and std must be finite numbers, std > 0"),
    ],
)
def test_a_model_asking_for_absurd_preprocessing_is_refused(labelled, reference, tmp_path, recipe, message):
    base = {"color_order": "RGB", "resize": [320, 320], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    hostile = _with_metadata(reference, tmp_path / "hostile.onnx", json.dumps({**base, **recipe}))
    with pytest.raises(EvaluationError, match=message):
        evaluate(
            EvaluationSettings(candidate=hostile, baseline=reference, images=labelled / "Image", out=tmp_path / "o")
        )
    assert not (tmp_path / "o").exists()


def test_a_huge_size_option_is_a_usage_error(labelled, reference, tmp_path):
    with pytest.raises(EvaluationUsageError, match="--size 60000x60000: sides up to 4096 only"):
        evaluate(
            EvaluationSettings(candidate=reference, images=labelled / "Image", out=tmp_path / "o", size=(60000, 60000))
        )


def test_a_model_that_outputs_nan_is_refused_not_scored(labelled, reference, tmp_path):
    path = tmp_path / "nan.onnx"
    onnx.save(_saliency_graph("nan", "image", ["n", 3, "h", "w"], 1, float("nan")), path)
    with pytest.raises(EvaluationError, match="its output holds NaN or infinite values"):
        evaluate(
            EvaluationSettings(
                candidate=path,
                baseline=reference,
                images=labelled / "Image",
                masks=labelled / "Mask",
                out=tmp_path / "o",
            )
        )
    assert not (tmp_path / "o").exists()
