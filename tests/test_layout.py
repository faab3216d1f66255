"""The layout: arrows between the packages run one way (import-linter), and tasks.py stays a thin layer."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGES = ("mirror", "release", "evaluation", "flow", "demo", "loopback", "bench", "tests")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)},
    )


def test_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout


def contract_states(stdout: str) -> dict[str, str]:
    """Each contract's name (as pyproject.toml spells it) -> "KEPT" or "BROKEN", from lint-imports' report.

    The report wraps long names at 80 columns, keeping the space before each break.
    """
    import tomllib

    names = [
        c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    ]
    text = re.sub(r"\s+", " ", stdout.replace("\n", ""))
    states = {}
    for name in names:
        match = re.search(re.escape(name) + r" (KEPT|BROKEN)", text)
        assert match, (name, stdout)
        states[name] = match.group(1)
    return states


def test_the_report_is_read_contract_by_contract():
    states = contract_states(lint_imports(ROOT).stdout)
    assert len(states) == 7 and set(states.values()) == {"KEPT"}


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("mirror/hashing.py", "import release.remote", "mirror (the export side)"),
        ("release/remote.py", "import mirror.pipeline", "release reads only mirror's torch-free modules"),
        ("release/redact.py", "import numpy", "release reads only mirror's torch-free modules"),
        ("loopback/__init__.py", "import tests.helpers", "loopback"),
        ("evaluation/metrics.py", "import torch", "evaluation"),
        ("evaluation/report.py", "import release.redact", "evaluation"),
        ("loopback/http.py", "import release.remote", "loopback"),
        ("loopback/http.py", "import sigstore.models", "loopback"),
        ("flow/run.py", "import loopback.github", "flow"),
        ("release/verify.py", "import flow", "release reads only mirror's torch-free modules"),
        ("demo/run.py", "import tests.helpers", "the demo"),
    ],
)
def test_a_wrong_arrow_breaks_a_contract(tmp_path, module, line, contract):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("node_modules", "__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # a wrong arrow, on purpose\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN") or "BROKEN" in row]
    assert broken, result.stdout
    assert contract.split()[0] in result.stdout
    # The contract this arrow breaks is the one reported broken, and its report cites this arrow
    # (another contract may break too, through it: evaluation reads mirror.hashing, say).
    states = contract_states(result.stdout)
    (name,) = [name for name in states if name.startswith(contract)]
    assert states[name] == "BROKEN", states
    source = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    imported = line.removeprefix("import ")
    report = re.sub(r"\s+", " ", result.stdout.split("Broken contracts", 1)[1].replace("\n", ""))
    section = report.split(name, 1)[1]
    cited = section.split(" is not allowed to import ")[1][:400]
    # An external package is reported by its top-level name (sigstore.models -> sigstore).
    assert f"{source} -> {imported} " in cited or f"{source} -> {imported.split('.')[0]} " in cited, section[:600]


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_tasks_py_imports_no_tests_and_nothing_imports_tasks():
    assert "tests" not in _imported_roots(ROOT / "tasks.py")
    for package in ("mirror", "release", "evaluation", "flow", "demo", "loopback", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            assert "tasks" not in _imported_roots(path), path


def test_the_operator_console_script_is_not_invoke():
    # Operators get a small argparse tool; the maintainers' Invoke tasks stay in the checkout.
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"u2netp-mirror": "release.cli:main"}
    assert "invoke" not in _imported_roots(ROOT / "release" / "cli.py")
