"""The Invoke layer as a user meets it: real `python -m invoke` processes."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    EVALUATION,
    EVALUATION_BUNDLE,
    LICENCE,
    MANIFEST,
    MANIFEST_BUNDLE,
    MODEL_CARD,
    OMS,
    ONNX,
    ONNX_BUNDLE,
    PROVENANCE,
    ROOT,
    files_in,
    fixture_pin_env,
    run_cli,
)


def test_list_shows_every_task_without_importing_torch():
    probe = (
        "import sys\n"
        "from invoke.main import program\n"
        f"sys.argv = ['invoke', '--search-root', {str(ROOT)!r}, '--list']\n"
        "try:\n"
        "    program.run()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert "HEAVY []" in result.stdout, result.stdout
    for name in ("export", "manifest", "sign", "verify", "demo", "fetch-upstream", "test"):
        assert f"  {name} " in result.stdout


def test_every_option_has_help():
    result = run_cli("--help", "export")
    assert result.returncode == 0
    for option in ("--upstream", "--checkpoint", "--dist", "--allow-unpinned", "--tolerance"):
        line = next(line for line in result.stdout.splitlines() if option in line)
        assert len(line.split(option, 1)[1].strip()) > 10, line


def test_export_without_checkout_says_how_to_get_one(tmp_path):
    result = run_cli("export", "--upstream", str(tmp_path / "U-2-Net"), "--dist", str(tmp_path / "dist"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "invoke fetch-upstream" in line and "Traceback" not in result.stderr
    assert files_in(tmp_path / "dist") == []


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "export", "--upstream", str(tmp_path / "none"), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
def test_export_then_manifest_from_the_command_line(checkout, tmp_path):
    env = fixture_pin_env(checkout)
    args = ("--upstream", str(checkout.root), "--dist", "out")
    exported = run_cli("export", *args, cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    assert f"export: out/{ONNX} sha256 " in exported.stdout
    assert "validate: onnx.checker ok" in exported.stdout
    written = run_cli("manifest", *args, cwd=tmp_path, env=env)
    assert written.returncode == 0, written.stderr
    document = json.loads((tmp_path / f"out/{MANIFEST}").read_text())
    assert document["upstream"]["pin"]["source"] == "config"
    assert document["run_provenance"]["entrypoint"] == "invoke manifest"


def test_config_pins_refuse_the_fixture(checkout, tmp_path):
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "not the audited upstream" in result.stderr and "--allow-unpinned" in result.stderr
    assert files_in(tmp_path / "out") == []


@pytest.mark.slow
def test_allow_unpinned_from_the_command_line(checkout, tmp_path):
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "out", "--allow-unpinned", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "UNPINNED" in result.stdout


@pytest.mark.slow
def test_fetch_upstream_clones_the_pinned_commit(pristine, tmp_path):
    dest = tmp_path / "clone"
    result = run_cli("fetch-upstream", "--dest", str(dest), "--url", str(pristine.root), env=fixture_pin_env(pristine))
    assert result.returncode == 0, result.stderr
    assert pristine.pin.commit in result.stdout
    assert "saved_models/u2netp/u2netp.pth" in result.stdout
    assert (dest / "model" / "u2net.py").read_bytes() == (pristine.root / "model" / "u2net.py").read_bytes()


def test_fetch_upstream_of_an_unknown_commit_leaves_nothing(pristine, tmp_path):
    dest = tmp_path / "clone"
    env = {**fixture_pin_env(pristine), "INVOKE_U2NETP_PIN_COMMIT": "1" * 40}
    result = run_cli("fetch-upstream", "--dest", str(dest), "--url", str(pristine.root), env=env)
    assert result.returncode == 1 and "cannot fetch commit 111111111111" in result.stderr
    assert not dest.exists()


@pytest.mark.slow
def test_demo_runs_the_whole_release_offline(tmp_path):
    result = run_cli("demo", "--dist", str(tmp_path / "demo"), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    release = [
        LICENCE,
        MANIFEST,
        MANIFEST_BUNDLE,
        ONNX,
        ONNX_BUNDLE,
        PROVENANCE,
        EVALUATION,
        EVALUATION_BUNDLE,
        OMS,
        MODEL_CARD,
    ]
    release.sort()
    evaluation = ["evaluation", "evaluation/evaluation.json", "evaluation/evaluation.md", "evaluation/evaluation.png"]
    assert files_in(tmp_path / "demo") == [
        *evaluation,
        "release",
        *(f"release/{n}" for n in release),
        "trust",
        "trust/trust_config.json",
        "trust/trusted_root.jsonl",
        "verified",
        *(f"verified/{n}" for n in release),
    ]
    for name in release:  # what the operator downloaded and verified is what was published
        assert (tmp_path / "demo/verified" / name).read_bytes() == (tmp_path / "demo/release" / name).read_bytes()
    steps = [line for line in result.stdout.splitlines() if line.startswith("demo: ")]
    for step in ("export", "manifest", "evaluate", "sign", "attach", "verify --repo --tag"):
        assert any(line.startswith(f"demo: {step}") for line in steps), step
    assert "published release u2netp-mirror-demo" in result.stdout
    assert "WARN  audited pins" in result.stdout and "passed, WITH WARNINGS" in result.stdout
    assert "ok    evaluation" in result.stdout and "pass: promoted: every rule holds" in result.stdout
    assert "demo: done, servers stopped" in result.stdout and "invoke fetch-upstream" in result.stdout
    document = json.loads((tmp_path / f"demo/release/{MANIFEST}").read_text())
    assert document["build_kind"] == "demo" and document["upstream"]["pin"]["source"] == "demo-fixture"
    assert document["run_provenance"]["entrypoint"] == "invoke demo"
    assert result.stderr == ""  # no warning of upstream's or a server's in the middle of it
    # The printed replay commands verify the release again once the demo's servers are gone.
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("verify the demo release again"))
    replays = [line.strip() for line in lines[start + 1 :] if line.startswith("  ")][:4]
    assert [line.split()[0:3] for line in replays] == [
        ["u2netp-mirror", "verify", "--dist"],
        ["python", "-m", "sigstore"],
        ["python", "-m", "model_signing"],
        ["gh", "attestation", "verify"],
    ]
    tools = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    ran = 0
    for command in replays:
        argv = shlex.split(command)  # as a shell would split what was printed
        program = shutil.which(argv[0], path=tools)
        if program is None:
            continue  # gh: GitHub's CLI is not installed here (docs/operator-guide.md says how it was checked)
        replayed = subprocess.run(
            [program, *argv[1:]], capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": tools}
        )
        assert replayed.returncode == 0, (command, replayed.stdout, replayed.stderr)
        ran += 1
    assert ran >= 3
    # sigstore-js (npm's verifier) accepts the demo's release against the trust root it left.
    demo = tmp_path / "demo"
    js = [
        str(demo / "trust/trust_config.json"),
        str(demo / f"release/{ONNX}.sigstore.json"),
        str(demo / f"release/{ONNX}"),
    ]
    identity = "https://github.com/example/u2netp-mirror/.github/workflows/release.yml@refs/tags/u2netp-mirror-demo"
    node = subprocess.run(
        [
            "node",
            str(ROOT / "tests/node/sigstore-verify.cjs"),
            *js,
            identity,
            "https://token.actions.githubusercontent.com",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert node.returncode == 0, node.stderr


@pytest.mark.slow
def test_demo_stops_its_servers_on_ctrl_c(tmp_path):
    import re
    import signal
    import socket

    scratch = tmp_path / "tmp"  # the demo's fixture, trust config and the server's asset store go here
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "demo", "--dist", str(tmp_path / "demo")],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        ports = []
        for line in process.stdout:
            if "Sigstore stack at" in line:
                ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", line)]
                break
        assert len(ports) == 2, "the demo did not report its servers"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) != 0
    finally:
        process.kill()
        process.wait()
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"
    # Servers stopped and their files removed, scratch gone.  onnxruntime (1.32) writes its own
    # telemetry session file, .ses, into $TMPDIR when it is imported: not the demo's to remove.
    assert [path.name for path in scratch.iterdir() if path.name != ".ses"] == []


def test_every_task_and_option_is_documented():
    # In a fresh process: Invoke hands each option's help out once (parsing consumes it).
    probe = (
        "import tasks\n"
        "for name in tasks.namespace.task_names:\n"
        "    task = tasks.namespace[name]\n"
        "    assert task.__doc__ and task.__doc__.strip().splitlines()[0], name\n"
        "    for argument in task.get_arguments():\n"
        "        assert argument.help and len(argument.help) > 10, (name, argument.name)\n"
        "print('checked', len(tasks.namespace.task_names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "checked 14" in result.stdout


# -- rough edges a new user hit ---------------------------------------------------------------


def test_no_short_flags_anywhere():
    # Invoke would invent -t for --tolerance, --tag and --trust-config alike; one meaning or none.
    from tasks import namespace

    for context in namespace.to_contexts():
        short = [flag for flag in context.flags if not flag.startswith("--")]
        assert short == [], (context.name, short)
    help_text = run_cli("--help", "release").stdout
    assert "--=STRING" not in help_text and "--tolerance" in help_text


def test_arguments_are_checked_before_torch_is_imported(tmp_path):
    for args, message in (
        (["export", "--upstream", "/nope"], "no upstream checkout here"),
        (["export", "--dist", str(tmp_path / "file")], "is a file, not a directory"),
        (["manifest", "--upstream", "/nope", "--dist", str(tmp_path / "out")], "no ONNX here"),
    ):
        (tmp_path / "file").write_text("x")
        probe = (
            "import sys\n"
            "from invoke.main import program\n"
            f"sys.argv = ['invoke', '--search-root', {str(ROOT)!r}, *{args!r}]\n"
            "try:\n"
            "    program.run()\n"
            "except SystemExit as exc:\n"
            "    print('EXIT', exc.code)\n"
            "print('HEAVY', sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert "EXIT 1" in result.stdout and "HEAVY []" in result.stdout, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("how", [["release", "--dry-run"], ["--dry", "release"]], ids=["--dry-run", "--dry"])
def test_release_dry_run_changes_nothing(checkout, tmp_path, how):
    env = {**fixture_pin_env(checkout), "GITHUB_TOKEN": ""}
    work = tmp_path / "work"
    work.mkdir()
    args = (*how, "--upstream", str(checkout.root), "--dist", "dist", "--repo", "example/u2netp-mirror")
    result = run_cli(*args, "--tag", "u2netp-mirror-v1.0.0", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout and "validate: onnx.checker ok" in result.stdout
    assert list(work.iterdir()) == []  # no dist, nothing else either


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "required"), [("false", False), ("0", False), ("no", False), ("true", True), ("1", True)]
)
def test_require_checkpoint_pin_reads_false_as_false(checkout, tmp_path, value, required):
    # No checkpoint pin (the runtime config that would set it left out): what the setting is about.
    pins = {key: text for key, text in fixture_pin_env(checkout).items() if key != "INVOKE_RUNTIME_CONFIG"}
    env = {**pins, "INVOKE_U2NETP_EXPORT_REQUIRE_CHECKPOINT_PIN": value}
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "dist", cwd=tmp_path, env=env)
    if required:
        assert result.returncode == 1 and "no audited sha256 is pinned" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_upstream_deprecation_warnings_stay_out_of_the_output(checkout, tmp_path):
    from mirror.fixture import git

    module = checkout.root / "model" / "u2net.py"
    # Upstream's real code calls the deprecated F.upsample; make the fixture do the same.
    module.write_text(module.read_text().replace("F.interpolate(", "F.upsample("))
    git(checkout.root, "commit", "-q", "-am", "use F.upsample as upstream does")
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "dist", "--allow-unpinned", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "upsample" not in result.stdout


@pytest.mark.slow
def test_fetch_upstream_ignores_a_git_dir_in_the_environment(pristine, tmp_path):
    caller = tmp_path / "caller"
    subprocess.run(["git", "init", "-q", str(caller)], check=True)
    env = {**fixture_pin_env(pristine), "GIT_DIR": str(caller / ".git"), "GIT_WORK_TREE": str(caller)}
    result = run_cli("fetch-upstream", "--dest", str(tmp_path / "clone"), "--url", str(pristine.root), env=env)
    assert result.returncode == 0, result.stderr
    remotes = subprocess.run(["git", "-C", str(caller), "remote"], capture_output=True, text=True, check=True)
    assert remotes.stdout == ""  # the caller's repository is untouched
    assert (tmp_path / "clone" / "model" / "u2net.py").is_file()
