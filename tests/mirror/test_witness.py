"""The upstream witness: an export reproduces upstream's saved maps, a perturbed checkpoint's does not.

The fixture upstream's "published maps" are made here from the fixture's own weights, with the
witness's own replica of upstream's test-time processing, as upstream's u2net_test.py made its
maps from the real weights.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from PIL import Image

from mirror.fixture import write_checkpoint
from mirror.pipeline import run_export
from mirror.witness import IMAGES, MAPS, network_input, read_image, saved_map, witness
from tests.evaluation.conftest import scene
from tests.helpers import MANIFEST, ONNX, run_cli, settings_for

pytestmark = pytest.mark.slow


@pytest.fixture
def published(checkout, exported_dist):
    """The fixture checkout with a test set and the maps its genuine weights give (PNG and JPEG photos)."""
    images, maps = checkout.root / IMAGES, checkout.root / MAPS
    images.mkdir(parents=True)
    maps.mkdir(parents=True)
    for seed, name in ((1, "one.png"), (2, "two.jpg"), (3, "three.png")):
        photo, _ = scene(seed, height=150, width=210)
        photo.save(images / name, quality=90)
    session = onnxruntime.InferenceSession(str(exported_dist / ONNX), providers=["CPUExecutionProvider"])
    for photo in sorted(images.iterdir()):
        image = read_image(photo)
        (output,) = session.run(None, {session.get_inputs()[0].name: network_input(image)})
        Image.fromarray(saved_map(output[:, 0], image.shape[0], image.shape[1])).save(maps / f"{photo.stem}.png")
    return checkout


def test_the_genuine_weights_reproduce_the_published_maps(published, exported_dist):
    report = witness((exported_dist / ONNX).read_bytes(), published.root)
    assert report is not None and report.held
    assert [image.image for image in report.images] == ["one.png", "three.png", "two.jpg"]
    assert report.worst_max <= 1 and report.as_dict()["threshold"] == 1
    assert report.decoder.startswith("IJG libjpeg 9d")


def test_a_perturbed_checkpoint_misses_the_witness(published, tmp_path):
    other = tmp_path / "perturbed.pth"
    write_checkpoint(published.root, other, seed=7)  # the same network, other weights
    settings = settings_for(published, tmp_path / "dist", checkpoint=other)
    run_export(settings)
    report = witness(settings.onnx_path.read_bytes(), published.root)
    assert report is not None and not report.held
    assert all(image.max_diff >= 3 for image in report.images), report.images


def test_the_task_exits_by_the_verdict(published, exported_dist, tmp_path):
    held = run_cli("witness", "--upstream", str(published.root), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "witness: held: 3 images, worst" in held.stdout
    (published.root / MAPS / "one.png").write_bytes(
        _inverted(published.root / MAPS / "one.png")
    )  # another map than the genuine weights give
    missed = run_cli("witness", "--upstream", str(published.root), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert missed.returncode == 1 and "witness: DID NOT HOLD" in missed.stdout
    empty = tmp_path / "no-test-set"
    empty.mkdir()
    nothing = run_cli("witness", "--upstream", str(empty), "--onnx", str(exported_dist / ONNX), cwd=tmp_path)
    assert nothing.returncode == 1 and "nothing was measured" in nothing.stderr


def _inverted(path) -> bytes:
    import io

    with Image.open(path) as opened:
        pixels = 255 - np.asarray(opened.convert("L"))
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_manifest_records_the_witness_and_so_signs_it(published, tmp_path):
    import json

    from mirror.manifest_step import run_manifest

    settings = settings_for(published, tmp_path / "dist")
    written = run_manifest(settings, export=run_export(settings))
    witnessed = json.loads(settings.manifest_path.read_text())["witness"]
    assert witnessed == written.document["witness"]
    assert witnessed["held"] is True and witnessed["images_compared"] == 3 and witnessed["threshold"] == 1
    other = tmp_path / "perturbed.pth"
    write_checkpoint(published.root, other, seed=7)
    perturbed = settings_for(published, tmp_path / "perturbed", checkpoint=other)
    assert run_manifest(perturbed, export=run_export(perturbed)).document["witness"]["held"] is False


def test_a_checkout_without_a_test_set_records_no_witness(exported_dist):
    import json

    assert "witness" not in json.loads((exported_dist / MANIFEST).read_text())
