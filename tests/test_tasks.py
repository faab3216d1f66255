"""The Invoke layer as a user meets it: real `python -m invoke` processes."""

import json
import subprocess
import sys

from tests.helpers import ROOT, files_in, fixture_pin_env, run_cli


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


def test_export_then_manifest_from_the_command_line(checkout, tmp_path):
    env = fixture_pin_env(checkout)
    args = ("--upstream", str(checkout.root), "--dist", "out")
    exported = run_cli("export", *args, cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    assert "export: out/u2netp_mirror_v1.onnx sha256 " in exported.stdout
    assert "validate: onnx.checker ok" in exported.stdout
    written = run_cli("manifest", *args, cwd=tmp_path, env=env)
    assert written.returncode == 0, written.stderr
    document = json.loads((tmp_path / "out/u2netp_mirror_v1.manifest.json").read_text())
    assert document["upstream"]["pin"]["source"] == "config"
    assert document["run_provenance"]["entrypoint"] == "invoke manifest"


def test_config_pins_refuse_the_fixture(checkout, tmp_path):
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "not the audited upstream" in result.stderr and "--allow-unpinned" in result.stderr
    assert files_in(tmp_path / "out") == []


def test_allow_unpinned_from_the_command_line(checkout, tmp_path):
    result = run_cli("export", "--upstream", str(checkout.root), "--dist", "out", "--allow-unpinned", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "UNPINNED" in result.stdout


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


def test_demo_runs_offline(tmp_path):
    result = run_cli("demo", "--dist", str(tmp_path / "demo"), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert files_in(tmp_path / "demo") == [
        "u2netp_mirror_v1.LICENSE",
        "u2netp_mirror_v1.manifest.json",
        "u2netp_mirror_v1.onnx",
    ]
    assert "parity 1x3x45x77" in result.stdout and "demo: done" in result.stdout
    document = json.loads((tmp_path / "demo/u2netp_mirror_v1.manifest.json").read_text())
    assert document["upstream"]["pin"]["source"] == "demo-fixture"
    assert document["run_provenance"]["entrypoint"] == "invoke demo"


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
    assert "checked 10" in result.stdout
