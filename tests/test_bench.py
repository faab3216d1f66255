"""`invoke bench --quick` runs every measurement and writes its report; no duration is asserted."""

import re

import pytest

from tests.helpers import run_cli


@pytest.mark.slow
def test_quick_bench_writes_the_report_and_chart(tmp_path):
    result = run_cli("bench", "--quick", "--output", str(tmp_path), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "benchmarks.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    names = " ".join(rows[1:])
    for measurement in (
        "start-up",
        "sha256",
        "export end to end",
        "inference 320×320",
        "inference 768×1024",
        "size",
        "verify",
        "upload",
        "download",
    ):
        assert measurement in names, measurement
    assert all(re.search(r"\| \d+\.\d\d× \|", row) for row in rows[1:])
    assert "torch not imported" in report
    assert "Machine: Linux" in report
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
