"""The recipe's shell-side helpers: parse_options.sh, run.pl and slurm.pl (with a fake sbatch)."""
import os
import subprocess
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[2] / "egs" / "TEMPLATE" / "avsr_smop" / "utils"


def _bash(script, *args, cwd=None):
    return subprocess.run(["bash", "-c", script, "x", *args], capture_output=True, text=True, cwd=cwd)


OPTS = f"""
stage=0
name=default
flag=false
. {UTILS}/parse_options.sh
echo "stage=$stage name=$name flag=$flag rest=$*"
"""


def test_parse_options():
    r = _bash(OPTS, "--stage", "3", "--name=a b", "--flag", "true", "pos")
    assert r.returncode == 0 and r.stdout.strip() == "stage=3 name=a b flag=true rest=pos"


@pytest.mark.parametrize("args,msg", [(["--nope", "1"], "invalid option --nope"), (["--flag", "yes"], "true or false"),
                                      (["--stage"], "needs a value")])
def test_parse_options_errors(args, msg):
    r = _bash(OPTS, *args)
    assert r.returncode == 2 and msg in r.stderr


def test_run_pl_array_logs_and_failures(tmp_path):
    ok = subprocess.run([str(UTILS / "run.pl"), "JOB=1:3", str(tmp_path / "log.JOB"), "echo", "job JOB", "|", "tr", "a-z", "A-Z"],
                        capture_output=True, text=True)
    assert ok.returncode == 0
    for j in (1, 2, 3):
        text = (tmp_path / f"log.{j}").read_text()
        assert f"JOB {j}" in text and "# Ended (code 0)" in text
    bad = subprocess.run([str(UTILS / "run.pl"), "JOB=1:2", str(tmp_path / "bad.JOB"), "test", "JOB", "-eq", "1"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "1 / 2 failed" in bad.stderr and "bad.2" in bad.stderr


def test_slurm_pl_with_a_fake_sbatch(tmp_path):
    # A stand-in for sbatch that runs each array task of the script locally and fails if any fails.
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text("""#!/usr/bin/env bash
echo "$@" > "$(dirname "$0")/flags"
script="${@: -1}"; array=""
for a in "$@"; do case "$a" in --array=*) array=${a#--array=} ;; esac; done
if [ -z "$array" ]; then bash "$script"; exit $?; fi
code=0
for i in $(seq ${array%-*} ${array#*-}); do SLURM_ARRAY_TASK_ID=$i bash "$script" || code=1; done
exit $code
""")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    r = subprocess.run([str(UTILS / "slurm.pl"), "--gpu", "1", "--mem", "8G", "JOB=1:2", str(tmp_path / "s.JOB.log"),
                        "echo", "task JOB"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "task 2" in (tmp_path / "s.2.log").read_text()
    flags = (fake.parent / "flags").read_text()
    assert "--gres=gpu:1" in flags and "--mem=8G" in flags and "--array=1-2" in flags and "--wait" in flags
    r = subprocess.run([str(UTILS / "slurm.pl"), "JOB=1:2", str(tmp_path / "f.JOB.log"), "test", "JOB", "-eq", "2"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode != 0 and "failed" in r.stderr


def test_run_pl_gives_each_gpu_job_its_own_devices(tmp_path):
    """No GPU needed: the jobs report the CUDA_VISIBLE_DEVICES they were given and when they ran."""
    script = 'echo "gpus=$CUDA_VISIBLE_DEVICES start=$(date +%s.%N)"; sleep 0.4; echo "end=$(date +%s.%N)"'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="3,5")  # this process may use GPUs 3 and 5
    r = subprocess.run([str(UTILS / "run.pl"), "--gpu", "1", "JOB=1:4", str(tmp_path / "log.JOB"), "bash", "-c", script],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    spans = {}
    for j in range(1, 5):
        out = dict(w.split("=", 1) for line in (tmp_path / f"log.{j}").read_text().splitlines()
                   if not line.startswith("#") for w in line.split())
        gpus, start, end = out["gpus"], float(out["start"]), float(out["end"])
        spans.setdefault(gpus, []).append((start, end))
    assert set(spans) == {"3", "5"}  # one GPU each, from the visible ones, never the first for all
    for intervals in spans.values():  # a GPU serves one job at a time
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:]))
    two = subprocess.run([str(UTILS / "run.pl"), "--gpu", "2", str(tmp_path / "two.log"), "echo", "$CUDA_VISIBLE_DEVICES"],
                         capture_output=True, text=True, env=env)
    assert two.returncode == 0 and (tmp_path / "two.log").read_text().splitlines()[-3] == "3,5"
    none = subprocess.run([str(UTILS / "run.pl"), "--gpu", "1", str(tmp_path / "none.log"), "true"],
                          capture_output=True, text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert none.returncode == 0 and "--gpu 1 but 0 GPU(s) visible" in none.stderr
