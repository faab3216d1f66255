"""``invoke bench``: the toolkit measured against its floors, each pair side by side in one run.

Every row times our way and the floor (a bare script, the stock CLI, curl, sha256sum, plain
``import invoke``) alternately, several times, and reports medians, spreads and the ratio
against a target.  These are measurements for docs/benchmarks.md, never assertions in tests.

Needs a checkout: the loopback Sigstore and GitHub servers come from tests/.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IDENTITY = "https://github.com/example/u2netp-mirror/.github/workflows/release.yml@refs/tags/u2netp-mirror-v0.0.0"
ISSUER = "https://token.actions.githubusercontent.com"

BARE_EXPORT = """
import importlib.util, sys, warnings
import torch
warnings.simplefilter("ignore")
spec = importlib.util.spec_from_file_location("u2net_bare", sys.argv[1] + "/model/u2net.py")
module = importlib.util.module_from_spec(spec)
import types
tv = types.ModuleType("torchvision"); tv.models = types.ModuleType("torchvision.models")
sys.modules.setdefault("torchvision", tv); sys.modules.setdefault("torchvision.models", tv.models)
spec.loader.exec_module(module)
net = module.U2NETP(3, 1).eval()
net.load_state_dict(torch.load(sys.argv[2], map_location="cpu", weights_only=True))
class D0(torch.nn.Module):
    def __init__(self, net):
        super().__init__(); self.net = net
    def forward(self, x):
        return self.net(x)[0]
axes = {0: "batch", 2: "height", 3: "width"}
torch.onnx.export(D0(net).eval(), (torch.zeros(1, 3, 320, 320),), sys.argv[3], dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["saliency_map"],
                  dynamic_axes={"input": axes, "saliency_map": axes})
"""

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
    client.upload_asset(release, path, name, "application/octet-stream", lambda *a: None, lambda: None)
else:
    asset = next(asset for asset in client.list_assets(release) if asset.id == int(sys.argv[5]))
    client.download_asset(asset, Path(sys.argv[6]), lambda *a: None)
elapsed = time.perf_counter() - start
print(elapsed, before, high_water_kib())
"""


@dataclass
class Sample:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        return max(self.values) - min(self.values)

    def show(self, unit: str) -> str:
        if len(self.values) == 1:
            return f"{self.median:,.3g} {unit}"
        return f"{self.median:,.3g} {unit} (±{self.spread / 2:,.2g}, n={len(self.values)})"


@dataclass
class Row:
    name: str
    ours: Sample
    floor: Sample
    unit: str
    ratio: float
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Seconds one command takes; it must succeed."""
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False, timeout=1800
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}… failed: {result.stderr.strip()[-400:]}")
    return elapsed


def alternate(ours: Callable[[], float], floor: Callable[[], float], repeat: int) -> tuple[Sample, Sample]:
    """Time both ``repeat`` times, interleaved, after one warm-up each (file cache, imports)."""
    ours(), floor()
    mine, base = [], []
    for _ in range(repeat):
        mine.append(ours())
        base.append(floor())
    return Sample(mine), Sample(base)


def env_pins(fixture) -> dict[str, str]:
    return {
        "repo_url": fixture.pin.repo_url,
        "commit": fixture.pin.commit,
        "module_sha256": fixture.pin.module_sha256,
        "license_sha256": fixture.pin.license_sha256,
        "checkpoint_sha256": "",
    }


def invoke_args(*task: str) -> list[str]:
    return [PYTHON, "-m", "invoke", "--search-root", str(ROOT), *task]


def random_file(path: Path, size: int) -> Path:
    block = os.urandom(1 << 20)
    with path.open("wb") as stream:
        for _ in range(size >> 20):
            stream.write(block)
    return path


def filesystem(path: Path) -> str:
    """'tmpfs' or 'disk (ext4)' for the file system holding ``path``, read from /proc/mounts."""
    best, kind = "", "disk"
    for line in Path("/proc/mounts").read_text().splitlines() if Path("/proc/mounts").exists() else []:
        _, mount, fstype, *_ = line.split()
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
            best, kind = mount, fstype
    return "tmpfs" if kind == "tmpfs" else f"disk ({kind})"


def landing_dir(scratch: Path, size: int) -> Path:
    """Where downloads land: tmpfs if it has room, else scratch.

    On this kind of VM the same 1 GiB write to disk took 0.2-2.8 s depending on the host's
    writeback, which decided the ratio more than either client did; tmpfs takes the disk
    out, and both clients write there.
    """
    shm = Path("/dev/shm")  # noqa: S108 -- only used through mkdtemp, a private new directory
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 3 * size:
        return Path(tempfile.mkdtemp(prefix="u2netp-bench-", dir=shm))
    return scratch


# -- the rows ------------------------------------------------------------------------------


def bench_startup(repeat: int) -> Row:
    ours, floor = alternate(lambda: run(invoke_args("--list")), lambda: run([PYTHON, "-c", "import invoke"]), repeat)
    ratio = ours.median / floor.median
    return Row("start-up: `invoke --list` vs `python -c 'import invoke'`", ours, floor, "s", ratio, "≤ 2×", ratio <= 2)


def bench_hashing(scratch: Path, size: int, repeat: int) -> Row:
    data = random_file(scratch / "hash.bin", size)
    script = f"from mirror.hashing import sha256_file; sha256_file(__import__('pathlib').Path({str(data)!r}))"
    ours, floor = alternate(lambda: run([PYTHON, "-c", script]), lambda: run(["sha256sum", str(data)]), repeat)
    data.unlink()
    throughput = floor.median / ours.median  # ours relative to sha256sum, in throughput
    return Row(
        f"sha256 of {size >> 20} MiB: ours vs `sha256sum`",
        ours,
        floor,
        "s",
        throughput,
        "≥ 0.9× throughput",
        throughput >= 0.9,
        [f"{size / ours.median / 2**20:,.0f} MiB/s vs {size / floor.median / 2**20:,.0f} MiB/s"],
    )


def bench_export(fixture, scratch: Path, repeat: int, env: dict[str, str]) -> Row:
    from mirror.pipeline import run_export
    from mirror.settings import ExportSettings

    dist = scratch / "export-dist"
    ours, floor = alternate(
        lambda: run(
            invoke_args(
                "export", "--upstream", str(fixture.root), "--checkpoint", str(fixture.checkpoint), "--dist", str(dist)
            ),
            env=env,
        ),
        lambda: run(
            [PYTHON, "-c", BARE_EXPORT, str(fixture.root), str(fixture.checkpoint), str(scratch / "bare.onnx")]
        ),
        repeat,
    )
    steps: list[str] = []
    settings = ExportSettings(
        upstream=fixture.root, checkpoint=fixture.checkpoint, dist=scratch / "inproc", pin=fixture.pin
    )
    run_export(settings, report=lambda line: steps.append(line.replace(str(scratch), "<tmp>")))
    ratio = ours.median / floor.median
    validation = next(
        (
            float(m.group(1))
            for line in steps
            if line.startswith("validate")
            for m in [re.search(r"\(([\d.]+) s\)$", line)]
            if m
        ),
        0.0,
    )
    without = (ours.median - validation) / floor.median
    steps.append(f"without the parity validation (which the bare script does not do) ours is {without:.2f}× the floor")
    # What start-up and imports cost each side before any work: the part of "the rest" no step reports.
    our_imports, bare_imports = alternate(
        lambda: run([PYTHON, "-c", "import invoke, torch, onnx, onnxruntime"]),
        lambda: run([PYTHON, "-c", "import torch"]),
        3,
    )
    steps.append(
        f"start-up and imports: {our_imports.median:.2f} s for ours (invoke, torch, onnx, onnxruntime), "
        f"{bare_imports.median:.2f} s for the bare script (torch)"
    )
    return Row(
        "export end to end: `invoke export` vs bare `torch.onnx.export` script",
        ours,
        floor,
        "s",
        ratio,
        "≤ 1.3×",
        ratio <= 1.3,
        ["where our time goes, in process: " + "; ".join(steps)],
    )


def bench_inference(fixture, repeat: int) -> list[Row]:
    import numpy as np
    import onnxruntime
    import torch

    from mirror.export import export_model
    from mirror.model import SaliencyHead, build_u2netp, load_checkpoint

    net = build_u2netp(fixture.root)
    load_checkpoint(net, fixture.checkpoint)
    head = SaliencyHead(net).eval()
    model_bytes = export_model(head, {}).model_bytes
    threads = torch.get_num_threads()
    levels = {
        "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    sessions = {}
    for name, level in levels.items():
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        sessions[name] = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    rows = []
    for height, width in ((320, 320), (768, 1024)):
        image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))
        feed = {"input": image.numpy()}
        with torch.no_grad():
            reference = head(image).numpy()

        def torch_call(image: torch.Tensor = image) -> float:
            with torch.no_grad():
                return _timed(lambda: head(image))

        diffs = {
            name: float(np.abs(session.run(None, feed)[0] - reference).max()) for name, session in sessions.items()
        }
        # Interleaved, so slow drift of the machine (other load, clocks) hits every side alike.
        timings: dict[str, list[float]] = {name: [] for name in [*sessions, "torch"]}
        for _ in range(2 * repeat):
            for name, session in sessions.items():
                timings[name].append(_timed(lambda s=session, f=feed: s.run(None, f)))
            timings["torch"].append(torch_call())
        per_level = {name: (Sample(timings[name]), diffs[name]) for name in sessions}
        best = min(per_level, key=lambda name: per_level[name][0].median)
        ours = per_level[best][0]
        floor = Sample(timings["torch"])
        ratio = ours.median / floor.median
        notes = [f"threads: {threads} (torch) = {threads} (onnxruntime intra-op)"]
        notes += [
            f"ORT {name}: {sample.median * 1000:,.2f} ms, max |ort - torch| {diff:.1e}"
            for name, (sample, diff) in per_level.items()
        ]
        rows.append(
            Row(
                f"inference {height}×{width}: onnxruntime ({best}) vs torch eager d0",
                ours,
                floor,
                "s",
                ratio,
                "≤ 0.6×",
                ratio <= 0.6,
                notes,
            )
        )
    return rows


def _timed(call: Callable[[], object]) -> float:
    # Let the last engine's idle threads stop spinning first (onnxruntime's spin by default),
    # so one side's leftovers never slow the other's timed run.
    time.sleep(0.02)
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_size(fixture, onnx_path: Path) -> Row:
    import torch

    state = torch.load(fixture.checkpoint, weights_only=True)
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    size = onnx_path.stat().st_size
    ratio = size / (4 * parameters)
    return Row(
        "size: ONNX bytes vs 4 × parameters",
        Sample([size]),
        Sample([4 * parameters]),
        "B",
        ratio,
        "≤ 1.05×",
        ratio <= 1.05,
        [f"{parameters:,} float32 parameters (batch-norm statistics included)"],
    )


def bench_verify(fixture, scratch: Path, repeat: int, env: dict[str, str]) -> Row:
    import json
    from dataclasses import replace

    from loopback.sigstore import SigstoreStack
    from mirror.manifest_step import run_manifest
    from mirror.pipeline import run_export
    from mirror.settings import ExportSettings
    from release.checks import ExpectedSigner
    from release.instance import SigstoreInstance
    from release.signing import sign_release

    stack = SigstoreStack().start()
    try:
        trust = scratch / "trust.json"
        trust.write_text(json.dumps(stack.trust_config()))
        dist = scratch / "signed"
        # The fixture's pins as the configured ones (env), so the build is an audited one.
        pins = replace(fixture.pin, source="config")
        settings = ExportSettings(upstream=fixture.root, checkpoint=fixture.checkpoint, dist=dist, pin=pins)
        run_manifest(settings, export=run_export(settings))
        pins_file = scratch / "pins.json"
        pins_file.write_text(json.dumps({"u2netp": {"pin": env_pins(fixture)}}))
        signer = ExpectedSigner(issuer=ISSUER, identity=IDENTITY)
        sign_release(dist, SigstoreInstance(trust_config=trust), stack.token(IDENTITY), expected=signer)
        files = [str(dist / "u2netp_mirror_v1.onnx"), str(dist / "u2netp_mirror_v1.manifest.json")]
        ours, floor = alternate(
            lambda: run(
                invoke_args(
                    "verify",
                    "--dist",
                    str(dist),
                    "--trust-config",
                    str(trust),
                    "--cert-identity",
                    IDENTITY,
                    "--cert-oidc-issuer",
                    ISSUER,
                ),
                env=env,
            ),
            lambda: run(
                [
                    PYTHON,
                    "-m",
                    "sigstore",
                    "--trust-config",
                    str(trust),
                    "verify",
                    "identity",
                    "--cert-identity",
                    IDENTITY,
                    "--cert-oidc-issuer",
                    ISSUER,
                    *files,
                ]
            ),
            repeat,
        )
        probe = (
            "import sys\nfrom release.cli import main\n"
            f"assert main(['verify', '--dist', {str(dist)!r}, '--trust-config', {str(trust)!r}, "
            f"'--cert-identity', {IDENTITY!r}, '--cert-oidc-issuer', {ISSUER!r}, '--pins', {str(pins_file)!r}]) == 0\n"
            "print('torch imported' if 'torch' in sys.modules else 'torch not imported')"
        )
        proof = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    finally:
        stack.stop()
    ratio = ours.median / floor.median
    return Row(
        "verify: `invoke verify` (2 bundles + hashes, schema, metadata, licence) vs `python -m sigstore verify "
        "identity` (2 bundles)",
        ours,
        floor,
        "s",
        ratio,
        "≤ 1.3×",
        ratio <= 1.3,
        [proof.stdout.strip().splitlines()[-1] + " (checked in the same run)"],
    )


def bench_transfer(scratch: Path, size: int, repeat: int) -> list[Row]:
    from loopback.github import GitHubServer

    token = "bench-token"
    server = GitHubServer(token=token).start()
    try:
        release = server.add_release("bench")
        upload_url = server._release_json(release)["upload_url"].split("{")[0]
        data = random_file(scratch / "transfer.bin", size)
        counter = iter(range(10_000))
        memory: list[tuple[int, int]] = []  # VmHWM (KiB) before and after each transfer

        def ours(*transfer: str) -> float:
            """One transfer by our client in a fresh process; records its memory, returns its seconds."""
            out = subprocess.run(
                [PYTHON, "-c", MEMORY_PROBE, server.url, server.repo, token, *transfer],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            seconds, before, after = out.stdout.split()
            memory.append((int(before), int(after)))
            return float(seconds)

        def ours_upload() -> float:
            return ours("upload", str(data), f"ours-{next(counter)}.bin")

        def curl_upload() -> float:
            return run(
                [
                    "curl",
                    "-sS",
                    "--fail",
                    "-o",
                    "/dev/null",
                    "-X",
                    "POST",
                    "-H",
                    f"Authorization: Bearer {token}",
                    "-H",
                    "Content-Type: application/octet-stream",
                    "-H",
                    "X-GitHub-Api-Version: 2022-11-28",
                    "-H",
                    "Accept: application/vnd.github+json",
                    # `--data-binary @file` would be the obvious floor, but curl reads that file into
                    # memory whole and refuses 1 GiB ("out of memory"); -T streams it, as we do.
                    "-T",
                    str(data),
                    f"{upload_url}?name=curl-{next(counter)}.bin",
                ]
            )

        up_ours, up_curl = alternate(ours_upload, curl_upload, repeat)
        asset_id = next(a.id for a in release.assets.values() if a.state == "uploaded")

        landing = landing_dir(scratch, size)
        ours_file, curl_file = landing / "down-ours.bin", landing / "down-curl.bin"

        def clean_slate() -> None:
            # Each repetition starts alike: no earlier copy to replace or truncate, no dirty pages.
            ours_file.unlink(missing_ok=True)
            curl_file.unlink(missing_ok=True)
            os.sync()

        def ours_download() -> float:
            clean_slate()
            return ours("download", str(asset_id), str(ours_file), "-")

        def curl_download() -> float:
            clean_slate()
            return run(
                [
                    "curl",
                    "-sS",
                    "--fail",
                    "-L",
                    "-o",
                    str(curl_file),
                    "-H",
                    f"Authorization: Bearer {token}",
                    "-H",
                    "Accept: application/octet-stream",
                    f"{server.url}/repos/{server.repo}/releases/assets/{asset_id}",
                ]
            )

        try:
            down_ours, down_curl = alternate(ours_download, curl_download, repeat)
        finally:
            clean_slate()
            if landing != scratch:
                landing.rmdir()
    finally:
        server.stop()
    peak = max(after - before for before, after in memory) / 1024
    highest = max(after for _, after in memory) / 1024
    rows = []
    where = {
        "upload": f"from a file on {filesystem(scratch)}",
        "download": f"into {filesystem(landing)}, after deleting the last copy and `sync`",
    }
    for what, ours, floor in (("upload", up_ours, up_curl), ("download", down_ours, down_curl)):
        throughput = floor.median / ours.median
        rows.append(
            Row(
                f"{what} {size >> 20} MiB over loopback: ours vs curl",
                ours,
                floor,
                "s",
                throughput,
                "≥ 0.8× throughput, < 64 MiB RSS growth",
                throughput >= 0.8 and peak < 64,
                [
                    f"{size / ours.median / 2**20:,.0f} MiB/s vs curl {size / floor.median / 2**20:,.0f} MiB/s",
                    f"{what} {where[what]}; ours timed in its process from the first request to the file "
                    "in place (interpreter start-up is the start-up row's), curl as a whole process",
                    f"RSS growth of our process during a transfer: at most {peak:,.1f} MiB "
                    f"(peak RSS of the whole process {highest:,.0f} MiB)",
                ],
            )
        )
    return rows


# -- report --------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("model name")),
            cpu,
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import onnxruntime
    import torch

    return [
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
        f"{memory:,.0f} GiB",
        f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}",
    ]


def write_report(rows: list[Row], output: Path, quick: bool, model_label: str, started: str) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Made by `invoke bench{' --quick' if quick else ''}` on {started}. Each row runs our way and its floor "
        "alternately in the same run; times are medians with ± half the range; the ratio is ours ÷ floor "
        "(for throughput rows, floor time ÷ ours, so higher is better). Model: " + model_label + ".",
        "",
        "Machine: " + "; ".join(machine()),
        "",
        "| measurement | ours | floor | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.ours.show(row.unit)} | {row.floor.show(row.unit)} | {row.ratio:.2f}× | "
            f"{row.target} | {'yes' if row.met else '**no**'} |"
        )
    lines += ["", "Notes:", ""]
    for row in rows:
        for note in row.notes:
            lines.append(f"- {row.name.split(':')[0]}: {note}")
    lines += ["", "![ratios against targets](benchmarks.png)", ""]
    output.mkdir(parents=True, exist_ok=True)
    (output / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")
    chart(rows, output / "benchmarks.png")


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    labels = [row.name.split(":")[0] for row in rows]
    colours = ["#2a9d8f" if row.met else "#e76f51" for row in rows]
    axes.barh(labels, [row.ratio for row in rows], color=colours)
    axes.axvline(1.0, color="#555", linewidth=0.8, linestyle="--")
    axes.set_xlabel("ratio to the floor (green: target met, red: missed)")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    pyplot.close(figure)


def run_benchmarks(output: Path, quick: bool, report: Callable[[str], None]) -> list[Row]:
    from mirror.fixture import SMALL_WIDTH, U2NETP_SIZED_WIDTH, build_fixture

    repeat = 2 if quick else 5
    # Sub-second commands vary by tens of ms run to run on a shared 2-core machine, and 1 GiB
    # transfers by whole seconds when the host stalls a write: more samples for both.
    short = 2 if quick else 11
    transfers = 2 if quick else 7
    big = (16 if quick else 1024) << 20
    started = time.strftime("%Y-%m-%d")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="u2netp-bench-") as tmp:
        scratch = Path(tmp)
        # --quick is a smoke run for the tests: the small stand-in, small files, 2 repetitions.
        fixture = build_fixture(scratch / "U-2-Net", width=SMALL_WIDTH if quick else U2NETP_SIZED_WIDTH)
        env = {
            "INVOKE_U2NETP_PIN_COMMIT": fixture.pin.commit,
            "INVOKE_U2NETP_PIN_MODULE_SHA256": fixture.pin.module_sha256,
            "INVOKE_U2NETP_PIN_LICENSE_SHA256": fixture.pin.license_sha256,
        }
        steps: list[tuple[str, Callable[[], Row | list[Row]]]] = [
            ("start-up", lambda: bench_startup(short)),
            ("hashing", lambda: bench_hashing(scratch, big, repeat)),
            ("export", lambda: bench_export(fixture, scratch, repeat, env)),
            ("inference", lambda: bench_inference(fixture, repeat)),
            ("size", lambda: bench_size(fixture, scratch / "export-dist" / "u2netp_mirror_v1.onnx")),
            ("verify", lambda: bench_verify(fixture, scratch, short, env)),
            ("transfer", lambda: bench_transfer(scratch, big, transfers)),
        ]
        for name, step in steps:
            start = time.perf_counter()
            result = step()
            new = result if isinstance(result, list) else [result]
            rows.extend(new)
            report(
                f"{name}: "
                + "; ".join(f"{r.ratio:.2f}× ({r.target}{'' if r.met else ', MISSED'})" for r in new)
                + f" ({time.perf_counter() - start:.1f} s)"
            )
        if quick:
            label = "the small demo fixture (11 k parameters; a smoke run, not representative)"
        else:
            label = (
                "the demo fixture at U2NETP's size: a stand-in network with 1.15 M parameters (U2NETP has 1.13 M), "
                "random weights; its full-resolution stages are wider than U2NETP's, so it computes more per pixel"
            )
        write_report(rows, output, quick, label, started)
    return rows
