"""The recipe's training and decoding stages (avsr.sh stages 3 and 4) under both job runners:
run.pl on this machine, and slurm.pl against a real Slurm cluster (ci/slurm_cluster.sh: Debian's
slurm-wlm and munge, two nodes on this machine, started as root and stopped after).

A recipe directory of tiny models and data is built the way egs/<corpus>/avsr_smop is laid out
(avsr.sh, utils/, path.sh, cmd.sh, conf/slurm.conf of the TEMPLATE); each experiment trains for
one short epoch and decodes four utterances. Stage 4's replay script decodes again.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from tiny_experiment import write_datadir, write_train_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "egs" / "TEMPLATE" / "avsr_smop"
CLUSTER = ROOT / "ci" / "slurm_cluster.sh"
TIMEOUT = 600
DECODED = "decode_decode_valid.loss.ave"  # stage 4's dir: the decoding config, then the checkpoint


def tiny_recipe(r: Path, pretrained, config: str, decode: str, **train) -> Path:
    """Lay out a recipe dir of tiny models and data in ``r`` (the TEMPLATE's avsr.sh, utils/, path.sh,
    cmd.sh, conf/slurm.conf; data/{train,valid,test}; conf/decode.yaml holding ``decode``) and write
    conf/<config> from ``train`` options: the training config, which the recipe adds the data and
    shape files to on the command line."""
    for name in ("avsr.sh", "utils", "path.sh"):  # path.sh finds the repository through its link
        (r / name).symlink_to(TEMPLATE / name)
    (r / "conf").mkdir()
    shutil.copy(TEMPLATE / "cmd.sh", r / "cmd.sh")
    shutil.copy(TEMPLATE / "conf" / "slurm.conf", r / "conf" / "slurm.conf")
    write_datadir(r / "data" / "train", n=6)
    write_datadir(r / "data" / "valid", n=3, seed=3)
    write_datadir(r / "data" / "test", n=4, seed=5)
    (r / "conf" / "decode.yaml").write_text(decode)
    cfg = write_train_config(r / "conf" / config, pretrained, r / "data" / "train", max_epoch=1, batch_size=2, **train)
    text = yaml.safe_load(cfg.read_text())
    for key in (
        "train_data_path_and_name_and_type",
        "valid_data_path_and_name_and_type",
        "train_shape_file",
        "valid_shape_file",
    ):
        del text[key]
    cfg.write_text(yaml.safe_dump(text))
    return cfg


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, pretrained):
    """A recipe dir with data/{train,valid,test}, shapes (stage 2) and one config per experiment."""
    r = tmp_path_factory.mktemp("recipe")
    cfg = tiny_recipe(
        r, pretrained, "train_local.yaml", "batch_size: 2\nbeam_size: 2\nmax_new_tokens_min: 6\n", num_iters_per_epoch=6
    )
    shutil.copy(r / "conf" / "decode.yaml", r / "conf" / "decode_onejob.yaml")
    res = avsr(r, "--stage", "2", "--stop_stage", "2", "--train_config", "conf/train_local.yaml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for tag in ("slurm", "twonodes", "broken", "seeds"):  # the same config and shapes under other names
        shutil.copy(cfg, r / "conf" / f"train_{tag}.yaml")
        shutil.copytree(r / "dump" / "shapes" / "train_local", r / "dump" / "shapes" / f"train_{tag}")
    return r


def avsr(recipe: Path, *args, backend: str = "local", env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "cmd_backend": backend, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["./avsr.sh", "--test_sets", "test", "--nj", "2", *args],
        cwd=recipe,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def run_stages(recipe: Path, tag: str, stages=(3, 4), backend="local", extra=(), env=None):
    res = avsr(
        recipe,
        "--stage",
        str(stages[0]),
        "--stop_stage",
        str(stages[-1]),
        "--train_config",
        f"conf/train_{tag}.yaml",
        *extra,
        backend=backend,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return recipe / "exp" / f"train_{tag}"


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def same_state(a: Path, b: Path) -> bool:
    x, y = state(a), state(b)
    return set(x) == set(y) and all(torch.equal(x[k], y[k]) for k in x)


@pytest.fixture(scope="module")
def local_exp(recipe):
    return run_stages(recipe, "local")


def test_two_decoding_jobs_equal_one(recipe, local_exp):
    # Through stage 4's replay script: it decodes this experiment again with the options of the call
    # that wrote it and those given to it (from any directory). Another checkpoint (the only epoch,
    # so the same weights) decodes into its own dir and leaves the first decoding as it was.
    replay = local_exp / DECODED / "run.sh"
    assert "--stage 4 --stop_stage 4 --train_config conf/train_local.yaml" in replay.read_text()
    first = (local_exp / DECODED / "test" / "text").stat().st_mtime_ns
    res = subprocess.run(
        [str(replay), "--nj", "1", "--decode_config", "conf/decode_onejob.yaml", "--inference_model", "1epoch.pth"],
        cwd="/",
        env={**os.environ, "cmd_backend": "local", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Stage 4: Decoding" in res.stdout and "Stage 3" not in res.stdout
    two, one = local_exp / DECODED / "test", local_exp / "decode_decode_onejob_1epoch" / "test"
    assert (two / "text").stat().st_mtime_ns == first
    assert (two / "logdir" / "output.2").is_dir() and not (one / "logdir" / "output.2").exists()
    assert (two / "text").read_text() == (one / "text").read_text()
    assert len((two / "text").read_text().splitlines()) == 4
    s2, s1 = ([float(line.split()[1]) for line in (d / "score").read_text().splitlines()] for d in (two, one))
    assert s2 == pytest.approx(s1, abs=1e-4)


# ----------------------------------------------------------------------------------------- Slurm
def _cluster_unavailable() -> str:
    if os.geteuid() != 0:
        return "needs root to start slurmd (CI runs as root)"
    missing = [
        b
        for b in ("munged", "slurmctld", "slurmd", "sbatch")
        if shutil.which(b, path=os.environ["PATH"] + ":/usr/sbin") is None
    ]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge; tools/install.sh does it as root)"
    return ""


@pytest.fixture(scope="module")
def slurm():
    """SLURM_CONF of a running two-node cluster; stopped after the module."""
    reason = _cluster_unavailable()
    if reason and os.environ.get("SMOP_SLURM_TESTS") == "required":  # ci/test.sh as root
        pytest.fail(f"no Slurm cluster: {reason}")
    if reason:
        pytest.skip(f"no Slurm cluster: {reason}")
    # munged needs every directory above its socket open to all: not pytest's 0700 tmp dirs.
    scratch = Path(tempfile.mkdtemp(prefix="smop_slurm_", dir="/tmp"))
    res = subprocess.run([str(CLUSTER), "start", str(scratch)], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        subprocess.run([str(CLUSTER), "stop", str(scratch)], capture_output=True, timeout=120)
        pytest.fail(f"the Slurm cluster did not start:\n{res.stderr[-3000:]}")
    yield {"SLURM_CONF": str(scratch / "slurm.conf")}
    subprocess.run([str(CLUSTER), "stop", str(scratch)], capture_output=True, timeout=120)
    shutil.rmtree(scratch, ignore_errors=True)


def test_slurm_training_and_decoding_equal_run_pl(recipe, local_exp, slurm):
    exp = run_stages(recipe, "slurm", backend="slurm", env=slurm)
    # The jobs went through sbatch: the kept submission scripts, and the logs Slurm's jobs wrote.
    assert "#SBATCH --partition=cpu" in (exp / "q" / "train.sh").read_text()
    assert "(Slurm job" in (exp / "train.log").read_text()
    decode_logs = exp / DECODED / "logdir"
    assert "#SBATCH --array=1-2" in (decode_logs / "q" / "decode.sh").read_text()
    assert all("(Slurm job" in (decode_logs / f"decode.{j}.log").read_text() for j in (1, 2))
    # Same training and decoding as run.pl, to the bit.
    assert same_state(exp / "1epoch.pth", local_exp / "1epoch.pth")
    assert (exp / DECODED / "test" / "text").read_text() == (local_exp / DECODED / "test" / "text").read_text()
    assert (exp / DECODED / "test" / "score").read_text() == (local_exp / DECODED / "test" / "score").read_text()


def test_a_failing_slurm_job_fails_the_stage_and_names_its_log(recipe, local_exp, slurm):
    # Training (espnet2.bin.launch -> slurm.pl): the stage prints the end of the job's log.
    res = avsr(
        recipe,
        "--stage",
        "3",
        "--stop_stage",
        "3",
        "--train_config",
        "conf/train_broken.yaml",
        "--train_args",
        "--optim no_such_optimizer",
        backend="slurm",
        env=slurm,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "end of exp/train_broken/train.log" in out and "no_such_optimizer" in out
    log = (recipe / "exp" / "train_broken" / "train.log").read_text()
    assert "(Slurm job" in log and "# Ended (code 2)" in log
    # Decoding (a job array): slurm.pl names the failing jobs' logs, and the stage fails.
    shutil.copy(recipe / "conf" / "decode.yaml", recipe / "conf" / "decode_broken.yaml")
    res = avsr(
        recipe,
        "--stage",
        "4",
        "--stop_stage",
        "4",
        "--train_config",
        "conf/train_local.yaml",
        "--decode_config",
        "conf/decode_broken.yaml",
        "--decode_args",
        "--no_such_option 1",
        backend="slurm",
        env=slurm,
    )
    out = res.stdout + res.stderr
    logdir = local_exp / "decode_decode_broken_valid.loss.ave" / "logdir"
    assert res.returncode != 0
    assert "2 / 2 failed" in out and f"log is in {logdir / 'decode.1.log'} (and 1 more)" in out
    assert "no_such_option" in (logdir / "decode.1.log").read_text()


def test_two_node_training_on_two_slurm_nodes(recipe, slurm):
    # espnet2.bin.launch --num_nodes 2 with slurm.pl: one sbatch job on two nodes, srun starts a
    # rank on each (ESPnet's --dist_launcher slurm, file:// initialisation, gloo without GPUs).
    exp = run_stages(recipe, "twonodes", stages=(3,), backend="slurm", extra=("--num_nodes", "2"), env=slurm)
    script = (exp / "q" / "train.sh").read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --partition=cpu"):
        assert line in script.splitlines(), line
    for word in (
        "srun --export=ALL",
        "--dist_launcher slurm",
        f"--dist_init_method file://{exp}/.dist_init_",
        "--dist_backend gloo",
        "--multiprocessing_distributed true",
    ):
        assert word in script, word
    log = (exp / "train.log").read_text()
    host = os.uname()[1].split(".")[0]
    assert "nodes smop[1-2]" in log and f"[{host}:0/2]" in log and "The training was finished at 1 epochs" in log
    assert (exp / "1epoch.pth").exists() and (exp / "valid.loss.ave.pth").exists()


def test_seeds_train_decode_and_score_a_run_each(recipe):
    # --seeds "0 1": seed 0 (the config's own) in exp/train_seeds, seed 1 in exp/train_seeds_seed1;
    # RESULTS.md gets the mean and range over both.
    res = avsr(
        recipe,
        "--stage",
        "3",
        "--stop_stage",
        "5",
        "--train_config",
        "conf/train_seeds.yaml",
        "--seeds",
        "0 1",
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    own, other = recipe / "exp" / "train_seeds", recipe / "exp" / "train_seeds_seed1"
    assert yaml.safe_load((own / "config.yaml").read_text())["seed"] == 0
    assert yaml.safe_load((other / "config.yaml").read_text())["seed"] == 1
    assert not same_state(own / "valid.loss.ave.pth", other / "valid.loss.ave.pth")
    results = (recipe / "RESULTS.md").read_text()
    assert "## WER (%) over seeds: mean [min, max]" in results
    row = next(line for line in results.splitlines() if line.startswith("|train_seeds|2|"))
    wers = [
        json.loads((d / DECODED / "test" / "score_wer" / "wer.json").read_text())["percent"]["err"]
        for d in (own, other)
    ]
    assert f"[{min(wers):.1f}, {max(wers):.1f}]" in row
