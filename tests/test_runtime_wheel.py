"""The runtime wheel alone, in a fresh venv (no torch, no transformers), predicts with a bundle."""

from __future__ import annotations

import json
import subprocess
import sys
import venv

from conftest import REPO, TEXTS

from edge_runtime import Pipeline


def test_runtime_wheel_in_a_fresh_venv(tmp_path, bundle_dir):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO / "runtime")],
                   check=True, timeout=300)
    wheel = next(wheels.glob("edge_sdk_runtime-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--only-binary=:all:", str(wheel)], check=True, timeout=600)
    installed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                               check=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert {"numpy", "onnxruntime", "tokenizers", "edge-sdk-runtime"} <= names
    assert not names & {"torch", "transformers", "edge-sdk", "cryptography"}  # signing is an extra

    result = subprocess.run([str(env_dir / "bin" / "edge-runtime"), "predict", str(bundle_dir), *TEXTS[:3]],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    want = Pipeline.load(bundle_dir)(TEXTS[:3])
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert all(abs(g["score"] - w["score"]) < 1e-5 for g, w in zip(got, want))
    verify = subprocess.run([str(env_dir / "bin" / "edge-runtime"), "verify", str(bundle_dir)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    signed = subprocess.run([str(env_dir / "bin" / "edge-runtime"), "verify", str(bundle_dir), "--public-key",
                             str(tmp_path / "release.pub")], capture_output=True, text=True, timeout=120)
    assert signed.returncode == 1 and "Traceback" not in signed.stderr
    assert signed.stderr.strip().endswith("pip install 'edge-sdk-runtime[signing]'")
