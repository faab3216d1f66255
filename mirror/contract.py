"""The release contract: the files a release is made of, what each is for, and how the ONNX's
embedded metadata maps onto the manifest.

The one place these facts are spelled.  Export, manifest, sign, attach, download and verify
all read them from here, torch-free, so a new file or a renamed one is one change, not eight.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MODEL_ID = "u2netp_mirror_v1"
ONNX_NAME = f"{MODEL_ID}.onnx"
MANIFEST_NAME = f"{MODEL_ID}.manifest.json"
BUNDLE_SUFFIX = ".sigstore.json"
# The signed in-toto statement (SLSA provenance) over the release files.
PROVENANCE_NAME = f"{MODEL_ID}.provenance{BUNDLE_SUFFIX}"
# The model card (docs/model-card.md with this build's facts), shipped with every release.
MODEL_CARD_NAME = f"{MODEL_ID}.model-card.md"
# The OpenSSF model-signing signature (a DSSE bundle) over every other file of the release.
OMS_NAME = f"{MODEL_ID}.oms{BUNDLE_SUFFIX}"
# The promotion gate's evidence, in a release that carries it: evaluate's report (evaluation.json,
# as the candidate's evaluation wrote it) and the signed in-toto test-result statement whose
# subject is the ONNX and whose configuration names the report's sha256.
EVALUATION_NAME = f"{MODEL_ID}.evaluation.json"
EVALUATION_STATEMENT_NAME = f"{MODEL_ID}.evaluation{BUNDLE_SUFFIX}"
# A report has a row per image: thousands of images are megabytes, never this much.
MAX_EVALUATION_BYTES = 64 << 20
# Sigstore bundles and the manifest are kilobytes; a "document" far larger is not one, and is
# never read whole (from dist or from the network).
MAX_DOCUMENT_BYTES = 1 << 20


def bundle_name(name: str) -> str:
    """The Sigstore bundle that signs the release file ``name``: right beside it."""
    return name + BUNDLE_SUFFIX


def licence_copy_name(kind: str) -> str:
    """The dist name of the upstream licence file ``kind`` ("LICENSE" or "NOTICE")."""
    return f"{MODEL_ID}.{kind}"


class Role(Enum):
    MODEL = "model"
    MANIFEST = "manifest"
    BUNDLE = "bundle"  # a Sigstore bundle signing one file
    PROVENANCE = "provenance"  # the signed in-toto statement over the release
    LICENCE = "licence"  # upstream's LICENSE (always) and NOTICE (when upstream has one)
    EVALUATION = "evaluation"  # the promotion gate's report and its signed statement (when the release has them)
    MODEL_CARD = "model card"  # what the model is and how to use it; covered by the model signature
    MODEL_SIGNATURE = "model signature"  # OpenSSF model signing over the release directory, signed last


@dataclass(frozen=True)
class ReleaseFile:
    name: str
    role: Role
    # Signed by a Sigstore bundle of its own, beside it.
    signed: bool
    # Every release carries it (NOTICE only when upstream has one: the manifest says).
    required: bool
    # A subject of the signed statement (its sha256 is in it).
    subject: bool
    # A new ONNX makes it wrong: export removes it.
    made_stale_by_export: bool
    # Read whole, so capped (None: streamed and hashed, never read whole).
    max_bytes: int | None = None


def _document(
    name: str, role: Role, *, required: bool = True, subject: bool = False, max_bytes: int = MAX_DOCUMENT_BYTES
) -> ReleaseFile:
    """A small unsigned file that describes the ONNX (a bundle, a statement, the card, the report):
    read whole, so capped, and made stale by a new export."""
    return ReleaseFile(
        name, role, signed=False, required=required, subject=subject, made_stale_by_export=True, max_bytes=max_bytes
    )


RELEASE_FILES: tuple[ReleaseFile, ...] = (
    ReleaseFile(ONNX_NAME, Role.MODEL, signed=True, required=True, subject=True, made_stale_by_export=False),
    ReleaseFile(
        MANIFEST_NAME,
        Role.MANIFEST,
        signed=True,
        required=True,
        subject=True,
        made_stale_by_export=True,
        max_bytes=MAX_DOCUMENT_BYTES,
    ),
    *(_document(bundle_name(name), Role.BUNDLE) for name in (ONNX_NAME, MANIFEST_NAME)),
    _document(PROVENANCE_NAME, Role.PROVENANCE),
    ReleaseFile(
        licence_copy_name("LICENSE"),
        Role.LICENCE,
        signed=False,
        required=True,
        subject=True,
        made_stale_by_export=False,
    ),
    ReleaseFile(
        licence_copy_name("NOTICE"),
        Role.LICENCE,
        signed=False,
        required=False,
        subject=True,
        made_stale_by_export=False,
    ),
    # The manifest records the card's sha256, so the provenance names it too.
    _document(MODEL_CARD_NAME, Role.MODEL_CARD, subject=True),
    _document(EVALUATION_NAME, Role.EVALUATION, required=False, max_bytes=MAX_EVALUATION_BYTES),
    _document(EVALUATION_STATEMENT_NAME, Role.EVALUATION, required=False),
    _document(OMS_NAME, Role.MODEL_SIGNATURE),
)

ALL_NAMES: tuple[str, ...] = tuple(file.name for file in RELEASE_FILES)
# The two files with a Sigstore bundle of their own.
SIGNED_NAMES: tuple[str, ...] = tuple(file.name for file in RELEASE_FILES if file.signed)
# What a new ONNX makes stale: the manifest that describes the old one and the signatures.
OUTPUTS_OF_AN_EXPORT: tuple[str, ...] = tuple(file.name for file in RELEASE_FILES if file.made_stale_by_export)
# The signed documents a download fetches first, each with its cap.
SIGNED_DOCUMENTS: dict[str, int] = {
    file.name: file.max_bytes for file in RELEASE_FILES if file.max_bytes is not None and file.required
}
# The evaluation's files, each with its cap: fetched when the release carries them.
EVALUATION_DOCUMENTS: dict[str, int] = {
    file.name: file.max_bytes for file in RELEASE_FILES if file.role is Role.EVALUATION and file.max_bytes
}


def licence_names() -> tuple[str, ...]:
    """The names of upstream's licence files as a release carries them."""
    return tuple(file.name for file in RELEASE_FILES if file.role is Role.LICENCE)


def carried(*, notice: bool, provenance: bool = True, evaluation: bool = False) -> tuple[str, ...]:
    """The names of the files one release carries: every required file, the NOTICE copy when
    upstream has one (``notice``), no statements over the release for releases made before them
    (``provenance``), and the evaluation's report and statement when it has them (``evaluation``)."""
    return tuple(
        file.name
        for file in RELEASE_FILES
        if (file.required or (file.role is Role.LICENCE and notice) or (file.role is Role.EVALUATION and evaluation))
        and (provenance or file.role not in (Role.PROVENANCE, Role.MODEL_CARD, Role.MODEL_SIGNATURE))
    )


@dataclass(frozen=True)
class MetadataField:
    """One fact the ONNX carries in its metadata_props that the manifest also records."""

    key: str
    # Where the manifest keeps the same fact.
    manifest: tuple[str, ...]
    # Decided by the export's inputs (the manifest step holds an ONNX in dist to them).
    from_inputs: bool = False


# Every key the metadata has beside preprocessing/postprocessing: verify refuses an ONNX whose
# embedded provenance disagrees with its signed manifest on any of them.
METADATA_FIELDS: tuple[MetadataField, ...] = (
    MetadataField("model_id", ("model_id",), from_inputs=True),
    MetadataField("build_kind", ("build_kind",), from_inputs=True),
    MetadataField("upstream_repo", ("upstream", "repo")),
    MetadataField("upstream_commit", ("upstream", "commit"), from_inputs=True),
    MetadataField("upstream_module_sha256", ("upstream", "module_sha256"), from_inputs=True),
    MetadataField("upstream_pinned", ("upstream", "pinned"), from_inputs=True),
    MetadataField("checkpoint_sha256", ("upstream", "checkpoint_sha256"), from_inputs=True),
    MetadataField("license", ("upstream", "license_spdx")),
    MetadataField("exporter_version", ("toolchain", "u2netp_mirror")),
    MetadataField("torch_version", ("toolchain", "torch")),
    MetadataField("onnx_version", ("toolchain", "onnx")),
    MetadataField("opset", ("export", "opset")),
    MetadataField("input", ("export", "input_name")),
    MetadataField("output", ("export", "output_name")),
    MetadataField("selected_output", ("export", "selected_upstream_output")),
)
METADATA_IN_MANIFEST: dict[str, tuple[str, ...]] = {field.key: field.manifest for field in METADATA_FIELDS}
CROSS_CHECKED: tuple[str, ...] = tuple(field.key for field in METADATA_FIELDS if field.from_inputs)
