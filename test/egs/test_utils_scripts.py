"""The recipe's shell-side helpers: parse_options.sh, run.pl and slurm.pl's option mapping."""
import importlib.machinery
import importlib.util
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


def _slurm_pl():
    loader = importlib.machinery.SourceFileLoader("slurm_pl", str(UTILS / "slurm.pl"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("slurm_pl", loader))
    loader.exec_module(module)
    return module


def test_slurm_pl_maps_options_to_sbatch_flags(capsys):
    # Submitting to a real cluster: test/egs/test_recipe_backends.py.
    conf = (UTILS.parent / "conf" / "slurm.conf").read_text()
    flags = _slurm_pl().sbatch_flags({"gpu": "2", "mem": "8G", "num_nodes": "2", "name": "x"}, conf)
    assert flags == ["--partition=gpu", "--time=72:00:00", "--gres=gpu:2", "--mem=8G", "--nodes=2",
                     "--ntasks-per-node=1", "--job-name=x"]
    cpu = _slurm_pl().sbatch_flags({"gpu": "0", "bogus": "1"}, conf)
    assert cpu == ["--time=72:00:00", "--partition=cpu"]  # the later --partition wins; no --gres
    assert "no rule for --bogus" in capsys.readouterr().err
