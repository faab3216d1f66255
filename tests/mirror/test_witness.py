"""The upstream witness: an export reproduces upstream's saved maps, a perturbed checkpoint's does not,
and only a build whose witness held is "audited".

The fixture upstream commits a test set whose "published maps" its own weights made in torch
(``mirror.fixture.write_test_set``), as upstream's u2net_test.py made its maps from the real weights.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from mirror.errors import UpstreamError
from mirror.fixture import TEST_PHOTOS, build_fixture, write_checkpoint
from mirror.manifest_step import run_manifest
from mirror.pipeline import run_export
from mirror.witness import IMAGES, MAPS, witness
from tests.helpers import MANIFEST, ONNX, run_cli, settings_for

pytestmark = pytest.mark.slow


def test_the_genuine_weights_reproduce_the_published_maps(pristine, exported_dist):
    report = witness((exported_dist / ONNX).read_bytes(), pristine.root)
    assert report is not None and report.held
    assert [image.image for image in report.images] == sorted(name for name, _ in TEST_PHOTOS)
    assert report.worst_max <= 1 and report.as_dict()["threshold"] == 1
    assert report.decoder.startswith("IJG libjpeg 9d")


def test_an_audited_build_records_the_witness_that_held(exported_dist):
    manifest = json.loads((exported_dist / MANIFEST).read_text())
    assert manifest["build_kind"] == "audited"
    assert manifest["witness"]["held"] is True and manifest["witness"]["images_compared"] == len(TEST_PHOTOS)


def test_a_perturbed_checkpoint_is_not_audited_whatever_its_pin(checkout, tmp_path):
    other = tmp_path / "perturbed.pth"
    write_checkpoint(checkout.root, other, seed=7)  # the same network, other weights
    settings = settings_for(checkout, tmp_path / "dist", checkpoint=other)  # and its sha256 pinned
    exported = run_export(settings)
    report = exported.inputs.witness
    assert report is not None and not report.held
    assert all(image.max_diff >= 3 for image in report.images), report.images
    assert exported.inputs.build_kind == "unpinned" and exported.metadata["build_kind"] == "unpinned"
    assert exported.inputs.pin_problems == () and "witness: did not hold" in (exported.inputs.witness_problem or "")
    document = run_manifest(settings, export=exported).document
    assert document["build_kind"] == "unpinned" and document["witness"]["held"] is False
    assert document["upstream"]["pinned"] is True  # every pin held: the witness alone decided
    # The manifest step on its own reaches the same verdict from the ONNX in dist.
    assert run_manifest(settings).document == document
    # And a release refuses it before writing anything.
    release = settings_for(checkout, tmp_path / "release", checkpoint=other, require_audited=True)
    with pytest.raises(UpstreamError, match="witness: did not hold"):
        run_export(release)
    assert not release.dist.exists() or not any(release.dist.iterdir())


def test_a_checkout_without_a_test_set_is_not_audited(tmp_path):
    bare = build_fixture(tmp_path / "U-2-Net", test_set=False)
    settings = settings_for(bare, tmp_path / "dist")
    exported = run_export(settings)
    assert exported.inputs.pin_problems == () and exported.inputs.build_kind == "unpinned"
    assert "no test set" in (exported.inputs.witness_problem or "")
    assert "witness" not in run_manifest(settings, export=exported).document


def test_the_task_exits_by_the_verdict(checkout, exported_dist, tmp_path):
    held = run_cli("witness", "--upstream", str(checkout.root), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "witness: held: 3 images, worst" in held.stdout
    first = checkout.root / MAPS / f"{TEST_PHOTOS[0][0].rsplit('.', 1)[0]}.png"
    first.write_bytes(_inverted(first))  # another map than the genuine weights give
    missed = run_cli("witness", "--upstream", str(checkout.root), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert missed.returncode == 1 and "witness: DID NOT HOLD" in missed.stdout
    empty = tmp_path / "no-test-set"
    empty.mkdir()
    nothing = run_cli("witness", "--upstream", str(empty), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert nothing.returncode == 1 and "nothing was measured" in nothing.stderr


@pytest.mark.parametrize("damaged", ["photo", "map"])
def test_a_damaged_test_set_is_one_clear_error(checkout, exported_dist, tmp_path, damaged):
    name, _ = TEST_PHOTOS[1]  # the JPEG: decoded by IJG libjpeg, which raises its own error
    path = checkout.root / (IMAGES / name if damaged == "photo" else MAPS / f"{name.rsplit('.', 1)[0]}.png")
    path.write_bytes(b"not an image at all")
    with pytest.raises(UpstreamError, match=f"^{path}: not a readable"):
        witness((exported_dist / ONNX).read_bytes(), checkout.root)
    result = run_cli("witness", "--upstream", str(checkout.root), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: not a readable")


def _inverted(path) -> bytes:
    with Image.open(path) as opened:
        pixels = 255 - np.asarray(opened.convert("L"))
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
