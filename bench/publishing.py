"""Rows about the release side: verify against the stock sigstore CLI, uploads and downloads against curl."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .common import (
    IDENTITY,
    ISSUER,
    PYTHON,
    ROOT,
    BenchModel,
    Row,
    Sample,
    alternate,
    filesystem,
    invoke_args,
    landing_dir,
    random_file,
    run,
)

MEMORY_PROBE = """
import sys, time
from pathlib import Path
from release.github import GitHubClient, RetryPolicy


def high_water_kib():
    # VmHWM is this process's own peak RSS; ru_maxrss would include the parent's at fork time.
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))


client = GitHubClient(api_url=sys.argv[1], repo=sys.argv[2], token=sys.argv[3], retry=RetryPolicy(timeout=600))
release = client.find_release("bench")
before = high_water_kib()
start = time.perf_counter()
if sys.argv[4] == "upload":
    path, name = Path(sys.argv[5]), sys.argv[6]
    client.upload_asset(release, path, name, "application/octet-stream", lambda: None)
else:
    asset = next(asset for asset in client.list_assets(release) if asset.id == int(sys.argv[5]))
    client.download_asset(asset, Path(sys.argv[6]))
elapsed = time.perf_counter() - start
print(elapsed, before, high_water_kib())
"""
BUNDLED = ("u2netp_mirror_v1.onnx", "u2netp_mirror_v1.manifest.json")
PROVENANCE = "u2netp_mirror_v1.provenance.sigstore.json"


def _signed_release(model: BenchModel, scratch: Path, trust: Path, token: str) -> Path:
    """A release made by the release flow itself (``flow.run_release``), attached to a loopback
    GitHub: the files `verify` is timed on are exactly what `invoke release` publishes."""
    from flow import ReleaseSettings, run_release
    from loopback.github import GitHubServer
    from mirror.reporting import SILENT
    from mirror.settings import ExportSettings
    from release.checks import ExpectedSigner
    from release.github import RetryPolicy
    from release.instance import SigstoreInstance
    from release.target import ReleaseTarget

    dist = scratch / "signed"
    server = GitHubServer(token="bench-token").start()  # noqa: S106 -- a loopback server's made-up token
    try:
        settings = ReleaseSettings(
            export=ExportSettings(
                upstream=model.upstream,
                checkpoint=model.checkpoint,
                dist=dist,
                pin=model.pin,  # type: ignore[arg-type]
            ),
            target=ReleaseTarget(repo=server.repo, tag="u2netp-mirror-bench", api_url=server.url, token=server.token),
            expected=ExpectedSigner(issuer=ISSUER, identity=IDENTITY),
            instance=SigstoreInstance(trust_config=trust),
            retry=RetryPolicy(timeout=60),
            pins=model.pin,  # type: ignore[arg-type]
            identity_token=token,
            # A measurement, not a release: the real model's checkpoint has no audited pin.
            allow_unpinned=True,
            label="bench",
        )
        run_release(settings, SILENT)
    finally:
        server.stop()
    return dist


def _stock_verify(trust: Path, dist: Path) -> list[list[str]]:
    """`python -m sigstore verify identity` for the same three bundles: two files, and the provenance."""
    base = [PYTHON, "-m", "sigstore", "--trust-config", str(trust), "verify", "identity"]
    base += ["--cert-identity", IDENTITY, "--cert-oidc-issuer", ISSUER]
    return [
        [*base, *(str(dist / name) for name in BUNDLED)],
        [*base, "--bundle", str(dist / PROVENANCE), str(dist / BUNDLED[0])],
    ]


def bench_verify(model: BenchModel, scratch: Path, repeat: int) -> Row:
    from loopback.sigstore import SigstoreStack

    stack = SigstoreStack().start()
    try:
        trust = scratch / "trust.json"
        trust.write_text(json.dumps(stack.trust_config()))
        dist = _signed_release(model, scratch, trust, stack.token(IDENTITY))
        pins = scratch / "pins.json"
        pin = model.pin
        fields = ("repo_url", "commit", "module_sha256", "license_sha256", "checkpoint_sha256")
        values = {name: getattr(pin, name) for name in fields if getattr(pin, name) is not None}
        pins.write_text(json.dumps({"u2netp": {"pin": values}}))
        ours_args = invoke_args("verify", "--dist", str(dist), "--trust-config", str(trust))
        ours_args += ["--cert-identity", IDENTITY, "--cert-oidc-issuer", ISSUER]
        # The real model's checkpoint has no audited pin: every check still runs, the pins one warns.
        ours_args += ["--allow-unpinned"]
        stock = _stock_verify(trust, dist)
        ours, floor = alternate(
            lambda: run(ours_args, env=model.env),
            lambda: sum(run(command) for command in stock),
            repeat,
        )
        probe = (
            "import sys\nfrom release.cli import main\n"
            f"assert main(['verify', '--dist', {str(dist)!r}, '--trust-config', {str(trust)!r}, "
            f"'--cert-identity', {IDENTITY!r}, '--cert-oidc-issuer', {ISSUER!r}, '--pins', {str(pins)!r}, "
            "'--allow-unpinned']) == 0\n"
            "print('torch imported' if 'torch' in sys.modules else 'torch not imported')"
        )
        proof = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    finally:
        stack.stop()
    ratio = ours.median / floor.median
    return Row(
        "verify: `invoke verify` (4 bundles + hashes, schema, metadata, pins, licence, card, statements) vs "
        "`python -m sigstore verify identity` (3 of the same bundles)",
        ours,
        floor,
        "s",
        ratio,
        "≤ 1.3×",
        ratio <= 1.3,
        [
            proof.stdout.strip().splitlines()[-1] + " (checked in the same run)",
            "the stock CLI needs two runs: one for the two file bundles, one for the provenance bundle (a DSSE "
            "envelope, checked against the ONNX it names); their times are added. Ours also checks the model "
            "signature (OpenSSF model signing, a DSSE bundle over every other file), which the stock CLI cannot "
            "check against files",
        ],
        model=model.label,
    )


@dataclass
class _Transfers:
    """The loopback GitHub, a test file, and our client's transfers run in fresh processes."""

    server: object
    token: str
    data: Path
    memory: list[tuple[int, int]] = field(default_factory=list)  # VmHWM (KiB) before and after each
    counter: int = 0

    def next_name(self, who: str) -> str:
        self.counter += 1
        return f"{who}-{self.counter}.bin"

    def ours(self, *transfer: str) -> float:
        server = self.server
        out = subprocess.run(
            [PYTHON, "-c", MEMORY_PROBE, server.url, server.repo, self.token, *transfer],  # type: ignore[attr-defined]
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        seconds, before, after = out.stdout.split()
        self.memory.append((int(before), int(after)))
        return float(seconds)


def _curl(token: str, *args: str) -> Callable[[], float]:
    return lambda: run(["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {token}", *args])


def _uploads(transfers: _Transfers, upload_url: str, repeat: int) -> tuple[Sample, Sample]:
    def curl() -> float:
        # `--data-binary @file` would be the obvious floor, but curl reads that file into memory
        # whole and refuses 1 GiB ("out of memory"); -T streams it, as we do.
        return _curl(
            transfers.token,
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "X-GitHub-Api-Version: 2022-11-28",
            "-H",
            "Accept: application/vnd.github+json",
            "-T",
            str(transfers.data),
            f"{upload_url}?name={transfers.next_name('curl')}",
        )()

    return alternate(lambda: transfers.ours("upload", str(transfers.data), transfers.next_name("ours")), curl, repeat)


def _downloads(
    transfers: _Transfers, asset_url: str, asset_id: int, landing: Path, repeat: int
) -> tuple[Sample, Sample]:
    ours_file, curl_file = landing / "down-ours.bin", landing / "down-curl.bin"

    def clean_slate() -> None:
        # Each repetition starts alike: no earlier copy to replace or truncate, no dirty pages.
        ours_file.unlink(missing_ok=True)
        curl_file.unlink(missing_ok=True)
        os.sync()

    def ours() -> float:
        clean_slate()
        return transfers.ours("download", str(asset_id), str(ours_file), "-")

    def curl() -> float:
        clean_slate()
        return _curl(transfers.token, "-L", "-o", str(curl_file), "-H", "Accept: application/octet-stream", asset_url)()

    try:
        return alternate(ours, curl, repeat)
    finally:
        clean_slate()


def bench_transfer(scratch: Path, size: int, repeat: int) -> list[Row]:
    from loopback.github import GitHubServer

    server = GitHubServer(token="bench-token").start()  # noqa: S106 -- a loopback server's made-up token
    landing = landing_dir(scratch, size)
    try:
        release = server.add_release("bench")
        transfers = _Transfers(server, server.token, random_file(scratch / "transfer.bin", size))
        upload_url = f"{server.root}/uploads/repos/{server.repo}/releases/{release.id}/assets"
        up = _uploads(transfers, upload_url, repeat)
        asset_id = next(a.id for a in release.assets.values() if a.state == "uploaded")
        asset_url = f"{server.url}/repos/{server.repo}/releases/assets/{asset_id}"
        down = _downloads(transfers, asset_url, asset_id, landing, repeat)
    finally:
        server.stop()
        if landing != scratch:
            landing.rmdir()
    peak = max(after - before for before, after in transfers.memory) / 1024
    highest = max(after for _, after in transfers.memory) / 1024
    where = {
        "upload": f"from a file on {filesystem(scratch)}",
        "download": f"into {filesystem(landing)}, after deleting the last copy and `sync`",
    }
    extra = {
        "upload": [],
        "download": [
            "ours also takes the sha256 of the bytes as they arrive (every download is checked before use), in "
            "a second thread; curl only writes them. The loopback server shares the same two cores, "
            "so the hash's CPU shows in the time"
        ],
    }
    target = {"upload": 0.8, "download": 0.9}
    rows = []
    for what, (ours, floor) in (("upload", up), ("download", down)):
        throughput = floor.median / ours.median
        rows.append(
            Row(
                f"{what} {size >> 20} MiB over loopback: ours vs curl",
                ours,
                floor,
                "s",
                throughput,
                f"≥ {target[what]}× throughput, < 64 MiB RSS growth",
                throughput >= target[what] and peak < 64,
                [
                    f"{size / ours.median / 2**20:,.0f} MiB/s vs curl {size / floor.median / 2**20:,.0f} MiB/s",
                    f"{what} {where[what]}; ours timed in its process from the first request to the file "
                    "in place (interpreter start-up is the start-up row's), curl as a whole process",
                    f"RSS growth of our process during a transfer: at most {peak:,.1f} MiB "
                    f"(peak RSS of the whole process {highest:,.0f} MiB)",
                    *extra[what],
                ],
            )
        )
    return rows
