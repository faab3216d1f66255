"""The model card a release ships: docs/model-card.md, with this build's facts appended.

The card in the checkout is the source (its front matter is what Hugging Face's tools read:
licence, library, pipeline tag, tags, the upstream as base model).  The manifest step writes
``u2netp_mirror_v1.model-card.md`` into dist from it, ending in a section with this build's ONNX
sha256 and size, its build kind and upstream commit, and the consumer snippets with that sha256
filled in; the release's model signature covers it like every other file.  Deterministic: the
same ONNX gives the same card.
"""

from __future__ import annotations

from pathlib import Path

from .contract import MODEL_CARD_NAME, ONNX_NAME
from .errors import ManifestError

# The card lives with the documentation; the export side runs from a checkout (tasks.py is not
# in the wheel), so the card is read from there rather than duplicated as package data.
CARD_SOURCE = Path(__file__).resolve().parents[1] / "docs" / "model-card.md"
ASSET_URL = "https://github.com/{repo}/releases/download/{tag}/" + ONNX_NAME


def card_source() -> str:
    try:
        return CARD_SOURCE.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(
            f"{CARD_SOURCE}: cannot read the model card ({exc.strerror}); the manifest step runs from a "
            "checkout of u2netp-mirror, which has docs/model-card.md"
        ) from None


def release_card(source: str, *, onnx_sha256: str, onnx_size: int, build_kind: str, upstream_commit: str) -> bytes:
    """The card as the release ships it: ``source`` and this build's section."""
    url = ASSET_URL.format(repo="OWNER/REPO", tag="TAG")
    section = f"""
## This release's files

| | |
| --- | --- |
| model | `{ONNX_NAME}`, {onnx_size:,} bytes |
| sha256 | `{onnx_sha256}` |
| build | {build_kind}, from upstream commit `{upstream_commit}` |
| this card | `{MODEL_CARD_NAME}`, covered by the release's signatures |

The release's assets download from `{url}` (OWNER/REPO and TAG are the release's). Verify first
(`u2netp-mirror verify --repo OWNER/REPO --tag TAG`, docs/operator-guide.md), or pin the hash:

```python
import pooch

onnx_path = pooch.retrieve(
    url="{url}",
    known_hash="sha256:{onnx_sha256}",
)
```
"""
    return (source.rstrip("\n") + "\n" + section).encode("utf-8")
