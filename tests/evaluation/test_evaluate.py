"""invoke evaluate: metrics against pysodmetrics called here, agreement against numpy, the rest as a user sees it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import py_sod_metrics
import pytest
from PIL import Image

from evaluation.errors import EvaluationError
from evaluation.models import Preprocessing
from evaluation.report import schema_problems
from evaluation.run import EvaluationSettings, evaluate
from mirror.reporting import Lines
from tests.helpers import MODEL_ID, files_in, run_cli

SCORED = ["alpha.png", "grey.png", *(f"scene{i}.{'jpg' if i % 2 else 'png'}" for i in range(8))]


def settings(labelled: Path, out: Path, candidate: Path, baseline: Path | None = None, **changes) -> EvaluationSettings:
    return EvaluationSettings(
        candidate=candidate,
        baseline=baseline,
        images=labelled / "Image",
        masks=labelled / "Mask",
        out=out,
        threads=2,
        latency_samples=3,
        **changes,
    )


def run(labelled, tmp_path, candidate, baseline=None, **changes) -> dict:
    lines: list[str] = []
    return evaluate(settings(labelled, tmp_path / "out", candidate, baseline, **changes), Lines(lines.append))


def maps_here(model: Path, name: str, labelled: Path) -> np.ndarray:
    """The model's raw map for an image, computed here with onnxruntime directly."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    with Image.open(labelled / "Image" / name) as opened:
        tensor = Preprocessing((320, 320)).tensor(opened.convert("RGB"))[None]
    (output,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: tensor})
    return output[0, 0]


def protocol_here(saliency: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The SOD protocol, written out again here: min-max, bilinear to the mask's size, 8-bit."""
    normalised = (saliency - saliency.min()) / (saliency.max() - saliency.min())
    resized = Image.fromarray(normalised.astype(np.float32), mode="F").resize(
        (mask.shape[1], mask.shape[0]), Image.Resampling.BILINEAR
    )
    return np.clip(np.rint(np.asarray(resized) * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def result(labelled, tmp_path_factory, random_candidate, reference) -> dict:
    return run(labelled, tmp_path_factory.mktemp("eval"), random_candidate, reference)


def test_metrics_equal_pysodmetrics_called_directly(result, labelled, random_candidate, reference):
    for role, model in (("candidate", random_candidate), ("baseline", reference)):
        f_measure = py_sod_metrics.FmeasureV2(
            metric_handlers={"fm": py_sod_metrics.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=0.3)}
        )
        metrics = [py_sod_metrics.MAE(), py_sod_metrics.Smeasure(), f_measure]
        metrics += [py_sod_metrics.Emeasure(), py_sod_metrics.WeightedFmeasure()]
        for name in SCORED:
            mask = np.asarray(Image.open(labelled / "Mask" / (Path(name).stem + ".png")).convert("L"))
            prediction = protocol_here(maps_here(model, name, labelled), mask)
            for metric in metrics:
                metric.step(pred=prediction, gt=mask)
        mae, sm, fm, em, wfm = (metric.get_results() for metric in metrics)
        expected = {
            "mae": mae["mae"],
            "s_measure": sm["sm"],
            "max_f": fm["fm"]["dynamic"].max(),
            "mean_e": em["em"]["curve"].mean(),
            "weighted_f": wfm["wfm"],
        }
        for name, value in expected.items():
            assert result["metrics"][role][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (role, name)


def test_per_image_rows_and_agreement_against_numpy(result, labelled, random_candidate, reference):
    rows = {row["image"]: row for row in result["per_image"]}
    assert sorted(rows) == sorted([*SCORED, "lonely.png"])
    assert rows["lonely.png"]["mask"] is None and rows["lonely.png"]["metrics"] == {"candidate": None, "baseline": None}
    per_image = []
    for name in rows:
        candidate, baseline = maps_here(random_candidate, name, labelled), maps_here(reference, name, labelled)
        difference = np.abs(candidate - baseline)
        expected = {
            "max_abs_diff": difference.max(),
            "mean_abs_diff": difference.mean(),
            "mask_disagreement": ((candidate > 0.5) != (baseline > 0.5)).mean(),
        }
        per_image.append(expected)
        for key, value in expected.items():
            assert rows[name]["agreement"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), (name, key)
    totals = result["agreement"]
    assert totals["max_abs_diff"] == pytest.approx(max(row["max_abs_diff"] for row in per_image), rel=1e-4)
    assert totals["mean_abs_diff"] == pytest.approx(np.mean([row["mean_abs_diff"] for row in per_image]), rel=1e-4)
    assert totals["mask_disagreement"] == pytest.approx(
        np.mean([row["mask_disagreement"] for row in per_image]), rel=1e-4, abs=1e-6
    )


def test_unreadable_and_unmatched_files_are_listed_and_the_run_goes_on(result):
    assert result["skipped"] == [
        {"file": "broken.jpg", "reason": "not a readable image (UnidentifiedImageError)"},
        {"file": "lonely.png", "reason": "no mask named lonely.* beside it in the masks: agreement only"},
    ]
    assert result["inputs"]["images"] == {"directory": "Image", "found": 12, "evaluated": 11, "with_masks": 10}


def test_a_random_weights_candidate_scores_clearly_worse_than_the_reference(result):
    candidate, baseline = result["metrics"]["candidate"], result["metrics"]["baseline"]
    assert baseline["max_f"] > 0.9 and baseline["s_measure"] > 0.8  # the reference does find the objects
    assert candidate["max_f"] < baseline["max_f"] - 0.3
    assert candidate["mae"] > baseline["mae"] + 0.1
    assert candidate["weighted_f"] < baseline["weighted_f"] - 0.3


def test_the_report_is_deterministic_and_holds_no_absolute_path(
    result, labelled, tmp_path, random_candidate, reference
):
    again = run(labelled, tmp_path, random_candidate, reference)
    assert {**again, "latency_ms": None} == {**result, "latency_ms": None}
    assert schema_problems(result) == []
    text = (tmp_path / "out" / "evaluation.json").read_text()
    assert str(tmp_path) not in text and str(labelled) not in text and '": "/' not in text
    assert json.loads(text) == again
    latency = result["latency_ms"]
    assert latency["candidate"] > 0 and latency["baseline"] > 0 and latency["samples"] == 3
    assert result["inputs"]["candidate"]["model_id"] == MODEL_ID
    assert result["inputs"]["candidate"]["preprocessing"]["source"] == "the model's metadata"
    assert result["inputs"]["baseline"]["preprocessing"]["source"].startswith("upstream U-2-Net")
    outputs = files_in(tmp_path / "out")
    assert outputs == ["evaluation.json", "evaluation.md", "evaluation.png"]
    assert (tmp_path / "out" / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "out" / "evaluation.md").read_text()
    assert "| MAE (lower is better) |" in report and "**✓**" in report and "Agreement: max |Δ|" in report


def test_a_fixed_shape_model_like_rembgs_is_run_one_image_at_a_time(labelled, tmp_path, reference, rembg_shaped):
    result = run(labelled, tmp_path, reference, rembg_shaped, batch_size=4)
    assert result["inputs"]["baseline"]["batch"] == 1 and result["inputs"]["baseline"]["input"] == "input.1"
    assert result["inputs"]["baseline"]["output"] == "d0"
    assert len(result["per_image"]) == 11
    # Two red-finders with different gains: same masks almost everywhere, different maps.
    assert result["agreement"]["mask_disagreement"] < 0.01 < result["agreement"]["max_abs_diff"]
    with pytest.raises(EvaluationError, match=r"takes 320x320 inputs only, not 256x256"):
        run(labelled, tmp_path, reference, rembg_shaped, size=(256, 256))


def test_without_masks_agreement_alone(labelled, tmp_path, random_candidate, reference):
    result = evaluate(
        EvaluationSettings(
            candidate=random_candidate,
            baseline=reference,
            images=labelled / "Image",
            out=tmp_path / "out",
            threads=2,
            latency_samples=2,
        ),
    )
    assert result["metrics"] is None and result["agreement"]["max_abs_diff"] > 0
    assert all(row["metrics"] == {"candidate": None, "baseline": None} for row in result["per_image"])
    assert "No masks: agreement only." in (tmp_path / "out" / "evaluation.md").read_text()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ("no readable image", "none of its 2 images could be read"),
        ("no images", "no images here"),
        ("candidate is not an ONNX", "not a readable ONNX model"),
    ],
)
def test_what_cannot_be_evaluated_is_one_clear_error(tmp_path, reference, spoil, message):
    images = tmp_path / "Image"
    images.mkdir()
    candidate = reference
    if spoil == "no readable image":
        (images / "a.jpg").write_bytes(b"nope")
        (images / "b.png").write_bytes(b"nope")
    elif spoil == "candidate is not an ONNX":
        Image.new("RGB", (40, 40)).save(images / "a.png")
        candidate = tmp_path / "text.onnx"
        candidate.write_text("hello")
    with pytest.raises(EvaluationError, match=message):
        evaluate(EvaluationSettings(candidate=candidate, images=images, out=tmp_path / "out", threads=1))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_from_the_command_line(labelled, tmp_path, random_candidate, reference):
    args = ["evaluate", "--candidate", str(random_candidate), "--baseline", str(reference)]
    args += ["--images", str(labelled / "Image"), "--masks", str(labelled / "Mask"), "--out", "report"]
    result = run_cli(*args, "--latency-samples", "2", "--threads", "2", cwd=tmp_path)
    # A random-weights candidate against the reference: measured, reported, and not promoted (exit 1).
    assert result.returncode == 1, result.stderr
    assert "evaluate: not promoted: mae at most 0.005 higher than the baseline's" in result.stdout
    assert "warning: broken.jpg: not a readable image" in result.stdout
    assert "candidate: mae" in result.stdout and "agreement: max |Δ|" in result.stdout
    assert files_in(tmp_path / "report") == ["evaluation.json", "evaluation.md", "evaluation.png"]
    bad = run_cli("evaluate", "--images", str(labelled / "Image"), "--batch-size", "many", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "--batch-size 'many': not a whole number"  # usage
    missing = run_cli("evaluate", "--images", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1 and "not a directory of images" in missing.stderr


_MEMORY_PROBE = """
import sys, tempfile
from pathlib import Path
import numpy as np
from PIL import Image
from evaluation.run import EvaluationSettings, evaluate


def high_water_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))


count, model = int(sys.argv[1]), Path(sys.argv[2])
root = Path(tempfile.mkdtemp(dir=sys.argv[3]))
(root / "Image").mkdir()
(root / "Mask").mkdir()
rng = np.random.default_rng(0)
for index in range(count):
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(root / "Image" / f"{index:05d}.png")
    Image.fromarray((rng.random((60, 80)) > 0.5).astype(np.uint8) * 255).save(root / "Mask" / f"{index:05d}.png")
before = high_water_kib()
settings = EvaluationSettings(
    candidate=model, baseline=model, images=root / "Image", masks=root / "Mask", out=root / "out", threads=2,
    latency_samples=2,
)
evaluate(settings)
print("GROWTH_KIB", high_water_kib() - before)
"""


@pytest.mark.slow
def test_memory_stays_flat_as_the_image_set_grows(reference, tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    growth = {}
    for count in (40, 400):
        result = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(count), str(reference), str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        growth[count] = int(result.stdout.split("GROWTH_KIB")[1])
    # Ten times the images, about the same peak: maps are scored and dropped, rows are numbers.
    assert growth[400] - growth[40] < 32 * 1024, growth


def test_the_scoring_pass_runs_each_model_in_a_session_made_for_one_shape(random_candidate, rembg_shaped):
    """The scoring pass's sessions (sizes fixed, a share of the threads) give the maps the model
    gives as loaded, pad a short last batch, and really are fixed: another shape is refused."""
    from evaluation.models import SaliencyModel

    model = SaliencyModel(random_candidate, threads=2)
    twin = model.fixed_for(3, 1)
    assert (twin.fixed_batch, twin.threads, model.fixed_batch, model.threads) == (3, 1, None, 2)
    height, width = model.preprocessing.size
    batch = np.random.default_rng(3).standard_normal((5, 3, height, width), dtype=np.float32)
    np.testing.assert_allclose(twin.predict(batch), model.predict(batch), atol=1e-5)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        twin.session.run(None, {twin.input_name: batch[:2]})
    fixed_already = SaliencyModel(rembg_shaped, threads=1)
    assert fixed_already.fixed_for(8, 1) is fixed_already  # nothing free, same threads: the same session


def test_a_dimension_name_shared_by_height_and_width_stays_free_when_they_differ(tmp_path):
    from evaluation.models import SaliencyModel
    from tests.evaluation.conftest import _saliency_graph

    path = tmp_path / "square-named.onnx"
    onnx.save(_saliency_graph("square", "image", ["n", 3, "side", "side"], 1, 2.0), path)
    twin = SaliencyModel(path, threads=2, size=(32, 48)).fixed_for(2, 1)
    batch = np.random.default_rng(4).standard_normal((3, 3, 32, 48), dtype=np.float32)
    assert twin.predict(batch).shape == (3, 32, 48)  # "side" left free; the batch still fixed and padded
    assert twin.fixed_batch == 2
