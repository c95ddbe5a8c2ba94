"""The recipe's shell-side helpers: parse_options.sh, stamp.sh, run.pl, slurm.pl (its option mapping and
its message without Slurm) and cmd.sh."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
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


@pytest.mark.parametrize(
    "args,msg",
    [(["--nope", "1"], "invalid option --nope"), (["--flag", "yes"], "true or false"), (["--stage"], "needs a value")],
)
def test_parse_options_errors(args, msg):
    r = _bash(OPTS, *args)
    assert r.returncode == 2 and msg in r.stderr


def test_run_pl_array_logs_and_failures(tmp_path):
    ok = subprocess.run(
        [str(UTILS / "run.pl"), "JOB=1:3", str(tmp_path / "log.JOB"), "echo", "job JOB", "|", "tr", "a-z", "A-Z"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0
    for j in (1, 2, 3):
        text = (tmp_path / f"log.{j}").read_text()
        assert f"JOB {j}" in text and "# Ended (code 0)" in text
    bad = subprocess.run(
        [str(UTILS / "run.pl"), "JOB=1:2", str(tmp_path / "bad.JOB"), "test", "JOB", "-eq", "1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "1 / 2 failed" in bad.stderr and "bad.2" in bad.stderr


def _slurm_pl():
    loader = importlib.machinery.SourceFileLoader("slurm_pl", str(UTILS / "slurm.pl"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("slurm_pl", loader))
    loader.exec_module(module)
    return module


def test_slurm_pl_maps_options_to_sbatch_flags(capsys):
    # Submitting to a real cluster: test/egs/test_recipe_backends.py.
    conf = (UTILS.parent / "conf" / "slurm.conf").read_text()
    flags = _slurm_pl().sbatch_flags({"gpu": "2", "mem": "8G", "num_nodes": "2", "name": "x"}, conf)
    assert flags == [
        "--partition=gpu",
        "--time=72:00:00",
        "--gres=gpu:2",
        "--mem=8G",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--job-name=x",
    ]
    cpu = _slurm_pl().sbatch_flags({"gpu": "0", "bogus": "1"}, conf)
    assert cpu == ["--time=72:00:00", "--partition=cpu"]  # the later --partition wins; no --gres
    assert "no rule for --bogus" in capsys.readouterr().err


def test_run_pl_gives_each_gpu_job_its_own_devices(tmp_path):
    """No GPU needed: the jobs report the CUDA_VISIBLE_DEVICES they were given and when they ran."""
    script = 'echo "gpus=$CUDA_VISIBLE_DEVICES start=$(date +%s.%N)"; sleep 0.4; echo "end=$(date +%s.%N)"'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="3,5")  # this process may use GPUs 3 and 5
    r = subprocess.run(
        [str(UTILS / "run.pl"), "--gpu", "1", "JOB=1:4", str(tmp_path / "log.JOB"), "bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    spans = {}
    for j in range(1, 5):
        out = dict(
            w.split("=", 1)
            for line in (tmp_path / f"log.{j}").read_text().splitlines()
            if not line.startswith("#")
            for w in line.split()
        )
        gpus, start, end = out["gpus"], float(out["start"]), float(out["end"])
        spans.setdefault(gpus, []).append((start, end))
    assert set(spans) == {"3", "5"}  # one GPU each, from the visible ones, never the first for all
    for intervals in spans.values():  # a GPU serves one job at a time
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:]))
    two = subprocess.run(
        [str(UTILS / "run.pl"), "--gpu", "2", str(tmp_path / "two.log"), "echo", "$CUDA_VISIBLE_DEVICES"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert two.returncode == 0 and (tmp_path / "two.log").read_text().splitlines()[-3] == "3,5"
    none = subprocess.run(
        [str(UTILS / "run.pl"), "--gpu", "1", str(tmp_path / "none.log"), "true"],
        capture_output=True,
        text=True,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )
    assert none.returncode == 0 and "--gpu 1 but 0 GPU(s) visible" in none.stderr


def test_slurm_pl_without_sbatch_says_what_is_missing(tmp_path):
    empty = tmp_path / "bin"  # a PATH without sbatch
    empty.mkdir()
    logdir = tmp_path / "exp" / "logdir"
    r = subprocess.run(
        [
            sys.executable,
            str(UTILS / "slurm.pl"),
            "--gpu",
            "1",
            "JOB=1:2",
            str(logdir / "decode.JOB.log"),
            "echo",
            "JOB",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(empty)},
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "sbatch not found on PATH" in r.stderr
    assert "apt-get install slurm-client" in r.stderr and "cmd_backend=local" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no submission script, no log dir


def test_cmd_sh_slurm_backend_without_sbatch_fails_at_once(tmp_path):
    # Sourced at the start of avsr.sh: a missing Slurm client is said before any stage runs.
    script = f"cmd_backend=slurm; . {UTILS.parent / 'cmd.sh'} || exit 3; echo sourced"
    r = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, env={"PATH": str(tmp_path)})
    assert r.returncode == 3 and "sourced" not in r.stdout
    assert "sbatch is not on PATH" in r.stderr and "cmd_backend=local" in r.stderr
    local = subprocess.run(
        ["/bin/bash", "-c", f"cmd_backend=local; . {UTILS.parent / 'cmd.sh'} && echo $decode_cmd"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
    )
    assert local.returncode == 0 and local.stdout.strip() == "utils/run.pl"


STAMP = f"""
set -euo pipefail
. {UTILS}/log.sh
. {UTILS}/stamp.sh
if is_done out "$1"; then echo skipped; exit 0; fi
rm -f out/.done
mkdir -p out && echo made >> out/made
mark_done out "$1"
"""


def test_stamps_skip_what_is_made_from_the_same_inputs(tmp_path):
    first = _bash(STAMP, "settings a\ndigest 1", cwd=tmp_path)
    assert first.returncode == 0 and "skipped" not in first.stdout, first.stderr
    assert (tmp_path / "out" / ".done").read_text() == "settings a\ndigest 1\n"
    same = _bash(STAMP, "settings a\ndigest 1", cwd=tmp_path)
    assert same.returncode == 0 and "skipped" in same.stdout
    other = _bash(STAMP, "settings a\ndigest 2", cwd=tmp_path)  # an input changed: made again, and said why
    assert other.returncode == 0 and "skipped" not in other.stdout
    assert "out was made from other inputs:" in other.stdout
    assert (
        "  was: digest 1\n" in other.stdout and "  now: digest 2\n" in other.stdout and "settings a" not in other.stdout
    )
    assert (tmp_path / "out" / "made").read_text() == "made\nmade\n"
    assert (tmp_path / "out" / ".done").read_text() == "settings a\ndigest 2\n"
    assert not (tmp_path / "out" / ".done.tmp").exists()


def test_parse_options_help_shows_the_values_of_the_call():
    script = f"""
nj=4
usage() {{ echo "--nj ($nj)"; }}
. {UTILS}/parse_options.sh
echo not reached
"""
    for args in (["--help", "--nj", "2"], ["--nj", "2", "-h"]):  # before or after the option
        r = _bash(script, *args)
        assert r.returncode == 0 and r.stderr.strip() == "--nj (2)" and "not reached" not in r.stdout
    bad = _bash(script, "--help", "--bogus", "1")  # a wrong option is still an error
    assert bad.returncode == 2 and "invalid option --bogus" in bad.stderr
