"""Distillation across processes: two `edge-sdk distill` workers sharing one Optuna study on a real
PostgreSQL server, and one student trained by 2 DDP processes (gloo, CPU) under `accelerate launch`.

The server comes from Debian's postgresql package (installed by `make setup-postgres`, which
`make test` runs); this file only starts a throwaway instance of it on a free localhost port.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_build import built, tiny_data, tiny_model_dir  # noqa: F401 (fixtures)
from test_distill import distill_data, distill_data_dir, one_torch_thread, teacher_dir  # noqa: F401 (fixtures)

BIN = Path(sys.executable).parent  # the venv running the tests: its edge-sdk and accelerate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _subprocess_env() -> dict:
    # One thread per process: several processes share the cores; tiny models gain nothing from more.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server (trust auth, fsync off) on 127.0.0.1 with an empty database."""
    import psycopg

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
                    "`make setup-postgres` installs Debian's postgresql package (needs root)")
    root = Path(tempfile.mkdtemp(prefix="edge-sdk-pg-"))
    # The server refuses to run as root: as root, run it as the package's `postgres` user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run(as_user + [str(c) for c in cmd], check=True, capture_output=True,  # noqa: E731
                                      text=True, timeout=120)
    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    run(bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "60", "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=50", "start")
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE optuna")
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_postgres_study(postgres_url, teacher_dir, distill_data_dir, tmp_path):  # noqa: F811
    import optuna

    trials = 6

    def worker(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [BIN / "edge-sdk", "distill", "--teacher", teacher_dir, "--data", distill_data_dir, "--layers", "0,2",
             "--trials", str(trials), "--epochs", "1-2", "--max-length", "32", "--storage", postgres_url,
             "--study", "shared", "--out", tmp_path / f"worker{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_subprocess_env())

    procs = [worker(0), worker(1)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    numbers = [t.number for t in study.trials]
    assert len(set(numbers)) == len(numbers), f"duplicate trial numbers: {numbers}"
    assert sorted(numbers) == list(range(len(numbers)))
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == len(numbers)  # nothing left running or stale
    counted = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    # Each worker checks the count before it starts a trial: two workers can overshoot by one at most.
    assert trials <= len(counted) <= trials + 1
    reports = [json.loads((tmp_path / f"worker{i}" / "best_params.json").read_text()) for i in range(2)]
    ran = [r["trials_here"] for r in reports]
    # The count adds up: every trial in the study was run by exactly one of the two workers.
    assert sorted(ran[0] + ran[1]) == sorted(numbers), ran
    assert all(ran), f"one worker ran every trial: {ran}"
    by_worker = {t.number: t.user_attrs["worker"] for t in study.trials}
    assert len({by_worker[n] for n in ran[0]}) == 1 and len({by_worker[n] for n in ran[1]}) == 1
    assert {by_worker[n] for n in ran[0]} != {by_worker[n] for n in ran[1]}
    # Both workers report the whole study and agree on its best trial.
    assert reports[0]["best_trial"] == reports[1]["best_trial"] == study.best_trial.number
    assert reports[0]["storage"] == postgres_url
    assert "worker" in outputs[0] and "Optuna study:" in outputs[0]


def test_accelerate_launch_trains_one_student_with_two_processes(teacher_dir, distill_data_dir, tmp_path):  # noqa: F811
    """DDP over gloo on CPU; `--multi_gpu` is accelerate's switch for its torch.distributed launcher
    (its `--cpu` alone runs a single process unless MPI is set up)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    params = tmp_path / "params.json"
    params.write_text(json.dumps({"best_params": {"alpha": 0.5, "temperature": 2.0, "learning_rate": 1e-3,
                                                  "epochs": 3, "layers": [0, 2]}}))
    proc = subprocess.run(
        [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
         "-m", "edge_sdk.distill", "--teacher", str(teacher_dir), "--data", str(distill_data_dir),
         "--params", str(params), "--max-length", "32", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=_subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "student (2 process(es))" in proc.stdout
    student_dir = tmp_path / "out" / "student"
    record = json.loads((student_dir / "distillation.json").read_text())
    assert record["world_size"] == 2 and record["config"]["layers"] == [0, 2]
    student = AutoModelForSequenceClassification.from_pretrained(student_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    assert student.config.num_hidden_layers == 2
    # Trained: the copied layer moved away from the teacher's layer 2.
    assert not torch.equal(student.bert.encoder.layer[1].output.dense.weight,
                           teacher.bert.encoder.layer[2].output.dense.weight)


def test_two_prune_search_workers_share_one_postgres_study(postgres_url, built, tmp_path):  # noqa: F811
    """`edge-sdk prune` (the autotune search over pruning knobs) as two workers on one study and one
    step cache: every trial run once, both reports the whole front."""
    import optuna

    def worker(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [BIN / "edge-sdk", "prune", "--target", "x86-avx512-vnni", "--model", built["model"], "--data",
             built["data"], "--cache-dir", built["cache"], "--trials", "4", "--epochs", "1", "--max-accuracy-drop",
             "100", "--storage", postgres_url, "--study", "shared-prune", "--no-build", "--out", tmp_path / f"w{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_subprocess_env())

    procs = [worker(0), worker(1)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    study = optuna.load_study(study_name="shared-prune", storage=postgres_url)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))) and 4 <= len(numbers) <= 5  # at most one overshoot
    assert all(t.state.is_finished() for t in study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2, workers  # both took trials
    fronts = [json.loads((tmp_path / f"w{i}" / "trials.json").read_text()) for i in range(2)]
    assert fronts[0]["front"] == fronts[1]["front"] and fronts[0]["chosen"] == fronts[1]["chosen"]
    assert len(fronts[0]["rows"]) == len(numbers)
