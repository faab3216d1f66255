"""The release contract, held to the public file names spelled out once in tests/helpers.py.

Operators, download scripts and other verifiers rely on these names; renaming one is a
breaking change that must show up here, not slip through a refactor."""

from __future__ import annotations

from mirror import contract
from tests.helpers import (
    EVALUATION,
    EVALUATION_BUNDLE,
    LICENCE,
    MANIFEST,
    MANIFEST_BUNDLE,
    MODEL_CARD,
    MODEL_ID,
    NOTICE,
    OMS,
    ONNX,
    ONNX_BUNDLE,
    PROVENANCE,
)


def test_the_file_names_are_the_public_ones():
    assert contract.MODEL_ID == MODEL_ID
    assert contract.ALL_NAMES == (
        ONNX,
        MANIFEST,
        ONNX_BUNDLE,
        MANIFEST_BUNDLE,
        PROVENANCE,
        LICENCE,
        NOTICE,
        MODEL_CARD,
        EVALUATION,
        EVALUATION_BUNDLE,
        OMS,
    )
    assert contract.SIGNED_NAMES == (ONNX, MANIFEST)
    outputs = (MANIFEST, ONNX_BUNDLE, MANIFEST_BUNDLE, PROVENANCE, MODEL_CARD, EVALUATION, EVALUATION_BUNDLE, OMS)
    assert outputs == contract.OUTPUTS_OF_AN_EXPORT
    assert set(contract.SIGNED_DOCUMENTS) == {MANIFEST, ONNX_BUNDLE, MANIFEST_BUNDLE, PROVENANCE, MODEL_CARD, OMS}
    assert set(contract.EVALUATION_DOCUMENTS) == {EVALUATION, EVALUATION_BUNDLE}


def test_what_a_release_carries():
    carried = (ONNX, MANIFEST, ONNX_BUNDLE, MANIFEST_BUNDLE, PROVENANCE, LICENCE, MODEL_CARD, OMS)
    assert contract.carried(notice=False) == carried
    assert contract.carried(notice=True)[-3:] == (NOTICE, MODEL_CARD, OMS)
    assert {PROVENANCE, MODEL_CARD, OMS}.isdisjoint(contract.carried(notice=False, provenance=False))
    assert contract.carried(notice=False, evaluation=True)[-4:] == (MODEL_CARD, EVALUATION, EVALUATION_BUNDLE, OMS)
    assert contract.licence_names() == (LICENCE, NOTICE)
    subjects = [file.name for file in contract.RELEASE_FILES if file.subject]
    assert subjects == [ONNX, MANIFEST, LICENCE, NOTICE, MODEL_CARD]


def test_one_table_maps_the_onnx_metadata_onto_the_manifest():
    assert len(contract.METADATA_IN_MANIFEST) == 15
    assert contract.CROSS_CHECKED == (
        "model_id",
        "build_kind",
        "upstream_commit",
        "upstream_module_sha256",
        "upstream_pinned",
        "checkpoint_sha256",
    )
    assert set(contract.CROSS_CHECKED) <= set(contract.METADATA_IN_MANIFEST)
