"""export + manifest end to end on the fixture: the real torch -> ONNX -> onnxruntime chain."""

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from mirror.errors import CheckpointError, LicenseError, ManifestError, UpstreamError, ValidationError
from mirror.fixture import git, write_checkpoint
from mirror.hashing import sha256_file
from mirror.manifest import schema_problems
from mirror.manifest_step import run_manifest
from mirror.model import SaliencyHead, build_u2netp, load_checkpoint
from mirror.pipeline import run_export
from mirror.reporting import Lines
from tests.helpers import (
    LICENCE,
    MANIFEST,
    MANIFEST_BUNDLE,
    MODEL_CARD,
    MODEL_ID,
    NOTICE,
    ONNX,
    ONNX_BUNDLE,
    audited_pins,
    files_in,
    settings_for,
)


def export_and_manifest(settings):
    exported = run_export(settings)
    return exported, run_manifest(settings, export=exported)


def test_export_writes_a_valid_dynamic_onnx(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    result = run_export(settings)

    assert files_in(settings.dist) == [ONNX]
    model = onnx.load(settings.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")] == [17]
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert graph_input.name == "input" and graph_output.name == "saliency_map"
    in_dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
    assert in_dims == ["batch", 3, "height", "width"] and out_dims == ["batch", 1, "height", "width"]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata == result.metadata
    assert metadata["model_id"] == MODEL_ID
    assert metadata["upstream_repo"] == "https://github.com/xuebinqin/U-2-Net"
    assert metadata["upstream_commit"] == checkout.pin.commit
    assert metadata["upstream_module_sha256"] == checkout.pin.module_sha256
    assert metadata["license"] == "Apache-2.0" and metadata["selected_output"] == "d0"
    assert metadata["torch_version"] == torch.__version__ and metadata["onnx_version"] == onnx.__version__
    assert json.loads(metadata["preprocessing"])["std"] == [0.229, 0.224, 0.225]
    assert [(c.batch, c.height, c.width) for c in result.validation.checks] == list(settings.validation_shapes)


def test_onnx_matches_upstream_d0_at_a_size_it_never_saw(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    run_export(settings)
    net = build_u2netp(checkout.root)
    load_checkpoint(net, checkout.checkpoint)
    image = torch.randn(3, 3, 97, 211, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        d0 = net(image)[0].numpy()
    session = onnxruntime.InferenceSession(str(settings.onnx_path), providers=["CPUExecutionProvider"])
    (found,) = session.run(["saliency_map"], {"input": image.numpy()})
    assert found.shape == (3, 1, 97, 211)
    np.testing.assert_allclose(found, d0, atol=1e-5, rtol=0)
    # d0, not another side output: d1 differs from d0 by far more than the tolerance.
    with torch.no_grad():
        assert np.abs(net(image)[1].numpy() - found).max() > 1e-3


def test_wrapper_selects_d0(pristine):
    net = build_u2netp(pristine.root)
    load_checkpoint(net, pristine.checkpoint)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(SaliencyHead(net)(image), net(image)[0])


def test_data_parallel_checkpoint_gives_identical_onnx(checkout, tmp_path):
    plain = settings_for(checkout, tmp_path / "plain")
    run_export(plain)
    dp_checkpoint = tmp_path / "dp" / "u2netp.pth"
    state = torch.load(checkout.checkpoint, weights_only=True)
    dp_checkpoint.parent.mkdir()
    torch.save({f"module.{key}": value for key, value in state.items()}, dp_checkpoint)
    data_parallel = settings_for(checkout, tmp_path / "dp-dist", checkpoint=dp_checkpoint)
    run_export(data_parallel)
    plain_model, dp_model = onnx.load(plain.onnx_path), onnx.load(data_parallel.onnx_path)
    # Same graph and weights; only the embedded checkpoint hash differs (it is another file).
    for model in (plain_model, dp_model):
        del model.metadata_props[:]
    assert plain_model.SerializeToString() == dp_model.SerializeToString()


def test_relocation_gives_byte_identical_onnx_and_manifest(checkout, tmp_path, monkeypatch):
    first = settings_for(checkout, tmp_path / "a" / "dist")
    monkeypatch.chdir(tmp_path)
    export_and_manifest(first)

    elsewhere = tmp_path / "far" / "away" / "U-2-Net"
    shutil.copytree(checkout.root, elsewhere, symlinks=True)
    (tmp_path / "cwd2").mkdir()
    monkeypatch.chdir(tmp_path / "cwd2")
    # Relative paths this time, from another working directory.
    second = settings_for(
        checkout,
        Path(os.path.relpath(tmp_path / "b" / "dist")),
        upstream=Path(os.path.relpath(elsewhere)),
        checkpoint=Path(os.path.relpath(elsewhere / "saved_models/u2netp/u2netp.pth")),
    )
    export_and_manifest(second)

    assert first.onnx_path.read_bytes() == (tmp_path / f"b/dist/{ONNX}").read_bytes()
    assert first.manifest_path.read_bytes() == (tmp_path / f"b/dist/{MANIFEST}").read_bytes()


def test_standalone_manifest_equals_chained_manifest(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    _, chained = export_and_manifest(settings)
    chained_bytes = settings.manifest_path.read_bytes()
    standalone = run_manifest(settings)
    assert standalone.sha256 == chained.sha256
    assert settings.manifest_path.read_bytes() == chained_bytes


def test_manifest_content(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    exported, written = export_and_manifest(settings)
    document = json.loads(settings.manifest_path.read_text())
    assert schema_problems(document) == []
    assert document["schema"] == "u2netp-mirror-export-manifest-v1"
    upstream = document["upstream"]
    assert upstream["commit"] == checkout.pin.commit
    assert upstream["checkpoint_path"] == "saved_models/u2netp/u2netp.pth"
    assert upstream["notice_present"] is False and upstream["pinned"] is True
    assert upstream["pin"]["source"] == "config"
    assert document["build_kind"] == "audited" and exported.metadata["build_kind"] == "audited"
    card = hashlib.sha256((settings.dist / MODEL_CARD).read_bytes()).hexdigest()
    assert document["outputs"] == {
        "onnx_path": ONNX,
        "onnx_sha256": exported.onnx_sha256,
        "onnx_size": exported.onnx_size,
        "model_card_sha256": card,
    }
    assert document["export"]["metadata_written"] == exported.metadata
    assert [[s["batch"], s["height"], s["width"]] for s in document["validation"]["shapes"]] == [
        list(shape) for shape in settings.validation_shapes
    ]
    assert all(shape["max_abs_diff"] <= 1e-5 for shape in document["validation"]["shapes"])
    provenance = document["run_provenance"]
    assert provenance["schema"] == "ai-run-provenance-v1"
    assert {(r["role"], r["root"], r["path"]) for r in provenance["inputs"]} == {
        ("upstream_module", "upstream", "model/u2net.py"),
        ("license", "upstream", "LICENSE"),
        ("checkpoint", "upstream", "saved_models/u2netp/u2netp.pth"),
    }
    assert [(r["role"], r["path"]) for r in provenance["outputs"]] == [
        ("onnx", ONNX),
        ("license", LICENCE),
        ("model_card", MODEL_CARD),
    ]
    assert provenance["outputs"][0]["sha256"] == exported.onnx_sha256
    licence_copy = settings.dist / LICENCE
    assert licence_copy.read_bytes() == (checkout.root / "LICENSE").read_bytes()
    assert provenance["outputs"][1]["sha256"] == upstream["license_sha256"]
    assert "source_date" not in provenance
    text = settings.manifest_path.read_text()
    assert text.endswith("}\n") and json.dumps(document, sort_keys=True, indent=2) + "\n" == text
    # No absolute path anywhere: none of the machine's directories appear.
    for fragment in (str(tmp_path), str(checkout.root), os.getcwd(), os.path.expanduser("~")):
        assert fragment not in text
    assert written.document == document


def test_notice_is_shipped_beside_the_model(checkout, tmp_path):
    (checkout.root / "NOTICE").write_text("U-2-Net\nCopyright the U-2-Net authors\n")
    git(checkout.root, "add", "NOTICE")
    git(checkout.root, "commit", "-q", "-m", "notice")
    settings = settings_for(checkout, tmp_path / "dist", allow_unpinned=True)
    export_and_manifest(settings)
    document = json.loads(settings.manifest_path.read_text())
    assert document["upstream"]["notice_present"] is True
    assert (settings.dist / NOTICE).read_text().startswith("U-2-Net")
    assert "notice" in {r["role"] for r in document["run_provenance"]["outputs"]}


def test_checkpoint_outside_the_checkout_records_its_name_only(checkout, tmp_path):
    outside = tmp_path / "weights" / "u2netp.pth"
    outside.parent.mkdir()
    shutil.copy(checkout.checkpoint, outside)
    settings = settings_for(checkout, tmp_path / "dist", checkpoint=outside)
    export_and_manifest(settings)
    document = json.loads(settings.manifest_path.read_text())
    assert document["upstream"]["checkpoint_path"] == "u2netp.pth"
    assert str(tmp_path) not in settings.manifest_path.read_text()


def test_source_date_epoch_is_the_only_time(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    settings = settings_for(checkout, tmp_path / "dist")
    export_and_manifest(settings)
    document = json.loads(settings.manifest_path.read_text())
    assert document["run_provenance"]["source_date"] == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ManifestError, match="SOURCE_DATE_EPOCH"):
        run_manifest(settings)


def test_manifest_refuses_an_onnx_exported_from_other_inputs(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    export_and_manifest(settings)
    before = settings.manifest_path.read_bytes()
    other = tmp_path / "other.pth"
    write_checkpoint(checkout.root, other, seed=1)
    with pytest.raises(ManifestError, match=r"exported from other inputs.*checkpoint_sha256"):
        run_manifest(settings_for(checkout, settings.dist, checkpoint=other))
    assert settings.manifest_path.read_bytes() == before


def test_manifest_refuses_an_onnx_from_another_commit(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    run_export(settings)
    (checkout.root / "README.md").write_text("next\n")
    git(checkout.root, "commit", "-q", "-am", "next")
    with pytest.raises(ManifestError, match="upstream_commit"):
        run_manifest(replace(settings, allow_unpinned=True))
    assert files_in(settings.dist) == [ONNX]


def test_manifest_without_onnx_says_to_export(checkout, tmp_path):
    with pytest.raises(ManifestError, match="run `invoke export` first"):
        run_manifest(settings_for(checkout, tmp_path / "dist"))


def test_allow_unpinned_is_recorded(checkout, tmp_path):
    (checkout.root / "README.md").write_text("moved on\n")
    git(checkout.root, "commit", "-q", "-am", "moved on")
    settings = settings_for(checkout, tmp_path / "dist", allow_unpinned=True)
    exported, _ = export_and_manifest(settings)
    document = json.loads(settings.manifest_path.read_text())
    assert document["upstream"]["pinned"] is False and document["upstream"]["allow_unpinned"] is True
    assert "--allow-unpinned" in document["run_provenance"]["argv"]
    assert exported.metadata["upstream_pinned"] == "false"
    assert document["build_kind"] == exported.metadata["build_kind"] == "unpinned"


def test_build_kind_says_what_an_export_is(checkout, tmp_path):
    # --allow-unpinned marks the build even where everything matched: it could have hidden a mismatch.
    matched = settings_for(checkout, tmp_path / "a", allow_unpinned=True)
    assert export_and_manifest(matched)[0].metadata["build_kind"] == "unpinned"
    # The embedded fixture's own pins (what `invoke demo` uses) make a demo build, never an audited one.
    demo = settings_for(checkout, tmp_path / "b", pin=checkout.pin)
    exported, written = export_and_manifest(demo)
    assert exported.metadata["build_kind"] == written.document["build_kind"] == "demo"


def test_checkpoint_pin_is_enforced_when_set(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    settings = replace(settings, pin=replace(settings.pin, checkpoint_sha256="ab" * 32))
    with pytest.raises(CheckpointError, match="!= pinned abababababab"):
        run_export(settings)
    assert files_in(settings.dist) == []


def _dirty(fixture):
    with open(fixture.root / "model" / "u2net.py", "a") as stream:
        stream.write("\n# edit\n")


def _mit_licence(fixture):
    (fixture.root / "LICENSE").write_text("MIT License\nApache License, Version 2.0 is mentioned.\n")
    git(fixture.root, "commit", "-q", "-am", "relicense")


def _no_licence(fixture):
    git(fixture.root, "rm", "-q", "LICENSE")
    git(fixture.root, "commit", "-q", "-m", "drop licence")


def _wrong_pin(fixture):
    (fixture.root / "README.md").write_text("other commit\n")
    git(fixture.root, "commit", "-q", "-am", "other commit")


def _malicious(fixture):
    marker = fixture.root.parent / "pwned"

    class Payload:
        def __reduce__(self):
            import pathlib

            return (pathlib.Path.touch, (pathlib.Path(marker),))

    state = torch.load(fixture.checkpoint, weights_only=True)
    state["payload"] = Payload()
    torch.save(state, fixture.checkpoint)


def _key_mismatch(fixture):
    state = torch.load(fixture.checkpoint, weights_only=True)
    state["extra.weight"] = state.pop("outconv.weight")
    torch.save(state, fixture.checkpoint)


def _shape_mismatch(fixture):
    state = torch.load(fixture.checkpoint, weights_only=True)
    state["outconv.bias"] = torch.zeros(2)
    torch.save(state, fixture.checkpoint)


def _nan_weights(fixture):
    state = torch.load(fixture.checkpoint, weights_only=True)
    state["outconv.weight"].fill_(float("nan"))
    torch.save(state, fixture.checkpoint)


def _truncated(fixture):
    data = fixture.checkpoint.read_bytes()
    fixture.checkpoint.write_bytes(data[: len(data) // 3])


def _no_checkpoint(fixture):
    fixture.checkpoint.unlink()


def _no_checkout(fixture):
    shutil.rmtree(fixture.root)


@pytest.mark.parametrize(
    ("spoil", "error", "message"),
    [
        (_dirty, UpstreamError, "modified tracked files"),
        (_mit_licence, LicenseError, "not the Apache License 2.0"),
        (_no_licence, LicenseError, "no LICENSE file"),
        (_wrong_pin, UpstreamError, "not the audited upstream"),
        (_malicious, CheckpointError, "refused"),
        (_key_mismatch, CheckpointError, "missing keys: outconv.weight; unexpected keys: extra.weight"),
        (_shape_mismatch, CheckpointError, r"shape mismatches: outconv.bias \(2,\) != \(1,\)"),
        (_nan_weights, CheckpointError, "non-finite"),
        (_truncated, CheckpointError, "not a readable PyTorch checkpoint"),
        (_no_checkpoint, CheckpointError, "no checkpoint here"),
        (_no_checkout, UpstreamError, "invoke fetch-upstream"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
def test_bad_input_is_an_error_and_leaves_dist_empty(checkout, tmp_path, spoil, error, message):
    spoil(checkout)
    settings = settings_for(checkout, tmp_path / "dist")
    with pytest.raises(error, match=message) as caught:
        run_export(settings)
    assert "\n" not in str(caught.value)
    assert files_in(settings.dist) == []
    assert not (tmp_path / "pwned").exists()


def test_failed_validation_leaves_dist_as_it_was(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    run_export(settings)
    before = settings.onnx_path.read_bytes()
    write_checkpoint(checkout.root, checkout.checkpoint, seed=3)
    with pytest.raises(ValidationError, match=r"differs from torch by .* > tolerance 1e-12"):
        run_export(settings_for(checkout, settings.dist, tolerance=1e-12))
    assert files_in(settings.dist) == [ONNX]
    assert settings.onnx_path.read_bytes() == before


def test_release_requires_an_audited_checkpoint_pin(checkout, tmp_path):
    unpinned = replace(audited_pins(checkout), checkpoint_sha256=None)
    settings = settings_for(checkout, tmp_path / "dist", require_checkpoint_pin=True, pin=unpinned)
    with pytest.raises(CheckpointError, match="no audited sha256 is pinned"):
        run_export(settings)
    assert files_in(settings.dist) == []
    pinned = replace(settings, pin=replace(settings.pin, checkpoint_sha256=sha256_file(checkout.checkpoint)))
    assert run_export(pinned).inputs.checkpoint_sha256 == pinned.pin.checkpoint_sha256


def test_reexport_removes_what_described_the_old_onnx(checkout, tmp_path):
    settings = settings_for(checkout, tmp_path / "dist")
    export_and_manifest(settings)
    for name in (ONNX_BUNDLE, MANIFEST_BUNDLE):
        (settings.dist / name).write_text("{}")  # stand-ins for the bundles sign would have written
    lines: list[str] = []
    run_export(settings, Lines(lines.append))  # the same inputs: the same bytes, nothing is stale
    assert not any("removed" in line for line in lines)
    assert len(files_in(settings.dist)) == 6  # the ONNX, the manifest, their bundles, the licence and the card

    other = tmp_path / "other.pth"
    write_checkpoint(checkout.root, other, seed=9)
    lines.clear()
    run_export(settings_for(checkout, settings.dist, checkpoint=other), reporter=Lines(lines.append))
    assert files_in(settings.dist) == [LICENCE, ONNX]
    (line,) = [line for line in lines if "removed" in line]
    assert MANIFEST in line and "run `invoke manifest`, then `invoke sign`" in line
