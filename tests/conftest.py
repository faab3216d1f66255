"""Shared fixtures: the upstream-shaped checkout is built once per session, copied per test."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mirror.fixture import Fixture, build_fixture


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A skipped test proves nothing and CI must not pass on one: report it as a failure.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are not allowed here: {report.longrepr}"


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("pristine") / "U-2-Net")


@pytest.fixture
def checkout(pristine: Fixture, tmp_path: Path) -> Fixture:
    """A private copy of the fixture checkout that a test may modify."""
    root = tmp_path / "U-2-Net"
    shutil.copytree(pristine.root, root, symlinks=True)
    return replace(pristine, root=root, checkpoint=root / pristine.checkpoint.relative_to(pristine.root))
