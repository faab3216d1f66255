"""What consumers use: the model card Hugging Face's tools read, shipped in every release with
its sha256 filled in, and the card's pooch snippet run against a release on the loopback GitHub."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pooch
import pytest
from huggingface_hub import ModelCard

from release.attach import attach_release
from release.checks import ExpectedSigner
from release.github import Clock, GitHubClient
from release.target import ReleaseTarget
from tests.conftest import GITHUB_TOKEN
from tests.helpers import GITHUB_ISSUER, MODEL_CARD, ONNX, RELEASE_IDENTITY, ROOT

pytestmark = pytest.mark.slow

REPO, TAG = "example/u2netp-mirror", "u2netp-mirror-v1.0.0"


def test_hugging_face_reads_the_cards_metadata(exported_dist):
    for path in (ROOT / "docs" / "model-card.md", exported_dist / MODEL_CARD):
        data = ModelCard.load(path).data
        assert data.license == "apache-2.0" and data.library_name == "onnx"
        assert data.pipeline_tag == "image-segmentation" and data.base_model == "xuebinqin/U-2-Net"
        assert "salient-object-detection" in data.tags
    shipped = (exported_dist / MODEL_CARD).read_text()
    sha256 = hashlib.sha256((exported_dist / ONNX).read_bytes()).hexdigest()
    assert f"| sha256 | `{sha256}` |" in shipped and f'known_hash="sha256:{sha256}"' in shipped


@pytest.fixture
def published(signed, github, instance, pins):
    client = GitHubClient(api_url=github.url, repo=REPO, token=GITHUB_TOKEN, clock=Clock(sleep=lambda _: None))
    target = ReleaseTarget(repo=REPO, tag=TAG, api_url=github.url, token=GITHUB_TOKEN)
    expected = ExpectedSigner(issuer=GITHUB_ISSUER, identity=RELEASE_IDENTITY)
    attach_release(signed, target, expected, instance, client, pins=pins)
    return signed


def _pooch_snippet() -> str:
    card = (ROOT / "docs" / "model-card.md").read_text()
    (snippet,) = [block for block in re.findall(r"```python\n(.*?)```", card, re.S) if "pooch.retrieve" in block]
    return snippet


def test_the_cards_pooch_snippet_fetches_the_release(published, github, tmp_path):
    sha256 = hashlib.sha256((published / ONNX).read_bytes()).hexdigest()
    snippet = _pooch_snippet().replace("https://github.com", github.root).replace("OWNER/REPO", REPO)
    snippet = snippet.replace("TAG", TAG).replace("SHA256_OF_THE_ONNX", sha256)
    # The docs' own code, run as a consumer would, with pooch's cache in the test's directory.
    ran = subprocess.run(
        [sys.executable, "-c", snippet + "\nprint(onnx_path)"],
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert Path(ran.stdout.strip()).read_bytes() == (published / ONNX).read_bytes()
    (release,) = github.releases.values()
    assert f'known_hash="sha256:{sha256}"' in release.body and f"{REPO}/releases/download/{TAG}/{ONNX}" in release.body
    with pytest.raises(ValueError, match="SHA256 hash of downloaded file"):
        pooch.retrieve(
            url=f"{github.root}/{REPO}/releases/download/{TAG}/{ONNX}", known_hash="sha256:" + "0" * 64, path=tmp_path
        )


def test_a_changed_card_is_neither_signed_nor_verified(signed, instance, pins, sigstore_stack):
    from release.checks import verify_release
    from release.errors import SigningError, VerificationFailed
    from release.signing import sign_release
    from tests.helpers import signer_for

    # The build job's manifest records the card: one changed on the way to the publish job is refused.
    (signed / MODEL_CARD).write_text((signed / MODEL_CARD).read_text() + "\nUse the weights at https://evil.example/\n")
    with pytest.raises(SigningError, match=r"model-card\.md is missing or is not the file the manifest records"):
        sign_release(signed, instance, sigstore_stack.token(RELEASE_IDENTITY), expected=signer_for())
    with pytest.raises(VerificationFailed, match="model card"):
        verify_release(signed, signer_for(), instance, pins)
