"""`invoke bench --quick` runs every measurement and writes its report; no duration is asserted."""

import re
import subprocess
import sys

import pytest

from tests.helpers import run_cli


@pytest.mark.slow
def test_quick_bench_writes_the_report_and_chart(tmp_path):
    result = run_cli("bench", "--quick", "--output", str(tmp_path), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "benchmarks.md").read_text()
    table = report.split("Notes:")[0]  # the results table; the validation margin has its own below
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    names = " ".join(rows[1:])
    for measurement in (
        "start-up",
        "sha256",
        "export end to end",
        "inference 320×320",
        "inference 768×1024",
        "latency 320×320, batch 1",
        "latency 320×320, batch 1, sizes fixed",
        "session creation (cold start)",
        "size",
        "verify",
        "upload",
        "download",
        "evaluate throughput",
        "int8 variant",
    ):
        assert measurement in names, measurement
    assert all(re.search(r"\| \d+\.\d\d× \|", row) for row in rows[1:])
    assert "torch not imported" in report
    assert "## int8 frontier" in report and "| static QDQ, per-channel, MinMax |" in report
    assert "## Validation margin" in report and "| enable_all, 1 thread(s) | 1 thread(s) |" in report
    assert "| fixture stand-in |" in report  # each model-dependent row says which model it ran on
    assert "Machine: Linux" in report
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("--upstream", "."), "--upstream and --checkpoint go together", 2),
        (("--baseline", "tasks.py"), "tasks.py: a baseline is compared with an export of the same network", 2),
        (("--upstream", ".", "--checkpoint", "no-such.pth"), "no-such.pth: not found", 1),
    ],
)
def test_bench_refuses_options_that_would_fail_or_mislead_before_measuring(tmp_path, args, message, code):
    result = run_cli("bench", "--output", str(tmp_path), *args, timeout=120)
    assert result.returncode == code  # 2: the options are wrong; 1: a file is not there
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_consumer_rows_against_a_baseline_also_show_what_the_graph_rewrite_saves(pristine, exported_dist, tmp_path):
    # The path `invoke bench --baseline` takes on the real model, here on the fixture: the
    # plain trace (the export row's bare script) is both the baseline and the graph before
    # the rewrite, so the rows and the note come out without a second model.
    from bench.export import BARE_EXPORT
    from bench.inference import bench_consumer
    from mirror.contract import ONNX_NAME

    plain = tmp_path / "plain.onnx"
    args = [sys.executable, "-c", BARE_EXPORT, str(pristine.root), str(pristine.checkpoint), str(plain)]
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    rows = bench_consumer(exported_dist / ONNX_NAME, plain, "`plain.onnx`", "fixture stand-in", 1, plain_trace=plain)

    assert [row.name for row in rows] == [
        "latency 320×320, batch 1: our ONNX vs `plain.onnx`",
        "latency 320×320, batch 1, sizes fixed: our ONNX vs `plain.onnx`",
        "session creation (cold start): our ONNX vs `plain.onnx`",
    ]
    assert all(row.model == "fixture stand-in" and row.ratio > 0 for row in rows)
    (note,) = [n for n in rows[2].notes if n.startswith("against the plain trace")]
    counts = re.search(r"([\d,]+) nodes; ours ([\d,]+),", note)
    assert counts, note
    plain_nodes, our_nodes = (int(count.replace(",", "")) for count in counts.groups())
    assert our_nodes < plain_nodes, note  # the rewrite removed the traced shape arithmetic
