"""Multi-process training on CPU through ESPnet's own distributed code: two ranks started by
torchrun, ``env://`` initialisation with the gloo backend (``--multiprocessing_distributed false``,
ESPnet's mode for external launchers), DistributedDataParallel with ``--unused_parameters true``.

ESPnet's other single-node launch (``espnet2.bin.launch --ngpu N``: one spawned process per GPU)
needs GPUs; test/egs/test_recipe_backends.py runs its multi-node launch (srun, file://
initialisation) on a real two-node Slurm cluster.

Each rank runs test/smop/tasks/ddp_probe.py, which trains exactly as ``smop.bin.avsr_train`` and
records per rank the tokens of each expert and the files it saved.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smop.decoders.hf_causal_lm_decoder import load_tokenizer
from smop.tasks.trainer import weights_only_torch_load
from tiny_experiment import SENTENCES, write_datadir, write_train_config

PROBE = Path(__file__).resolve().parent / "ddp_probe.py"
TIMEOUT = 300  # a hang (ranks waiting for each other) fails the test instead of blocking CI


def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def train(config: Path, exp: Path, nproc: int, *extra: str) -> subprocess.CompletedProcess:
    """Trains with ``nproc`` ranks (torchrun, gloo) or one plain process; probe records under exp/probe."""
    probe = exp / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    args = ["--config", str(config), "--output_dir", str(exp), *extra]
    if nproc == 1:
        cmd, threads = [sys.executable, str(PROBE), *args], 2
    else:  # --standalone: a free rendezvous port, so that concurrent test runs do not collide
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            str(PROBE),
            *args,
            "--ngpu",
            "0",
            "--multiprocessing_distributed",
            "false",
            "--dist_backend",
            "gloo",
        ]
        threads = 1  # one core per rank
    tmp = exp / "tmp"  # torchrun's per-run log dirs (torchelastic_*) go here, not into /tmp
    tmp.mkdir(exist_ok=True)
    res = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**_env(threads), "SMOP_PROBE_DIR": str(probe), "TMPDIR": str(tmp)},
    )
    (exp / "run.log").write_text(res.stdout + res.stderr)
    return res


def records(exp: Path, rank: int, kind: str) -> list:
    path = exp / "probe" / f"rank{rank}.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def train_stats(exp: Path) -> dict:
    with weights_only_torch_load():
        stats = torch.load(exp / "checkpoint.pth", map_location="cpu")["reporter"]["stats"]
    return {
        epoch: {k: float(v) for k, v in s["train"].items() if not hasattr(v, "total_seconds")}
        for epoch, s in stats.items()
    }


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def uniform(tmp_path_factory, pretrained):
    """Utterances of one duration and one transcript length, so that the shards of a batch hold
    equal token counts; augmentation off (crop = frame), as it draws random numbers per process."""
    tok = load_tokenizer(pretrained["llm"])
    by_length = {}
    for s in SENTENCES[:8]:
        by_length.setdefault(len(tok(s, add_special_tokens=False).input_ids), []).append(s)
    sentences = max(by_length.values(), key=len)
    assert len(sentences) >= 2, by_length
    root = tmp_path_factory.mktemp("ddp")
    data = write_datadir(root / "train", n=8, sentences=sentences, frames=30)
    # Four utterances per step (two per rank), one step per epoch: epoch N's train loss is step N's.
    cfg = write_train_config(
        root / "c.yaml",
        pretrained,
        data,
        batch_size=4,
        max_epoch=3,
        num_iters_per_epoch=1,
        preprocessor_conf={"crop_size": 96},
    )
    return root, cfg


@pytest.fixture(scope="module")
def single(uniform):
    root, cfg = uniform
    res = train(cfg, root / "single", 1)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "single"


@pytest.fixture(scope="module")
def two(uniform):
    """Two ranks, the first two of the three epochs (the resume test adds the third)."""
    root, cfg = uniform
    res = train(cfg, root / "two", 2, "--max_epoch", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "two"


def test_two_processes_train_as_one_on_the_same_global_batch(single, two):
    # ESPnet gives each rank every other utterance of the global batch and weights each rank's loss
    # by its utterances; with equal shards the token-mean CE and the z-loss are exactly the global
    # batch's, so steps agree up to float summation order (~1e-6). The one term that is not is the
    # load-balancing loss, a statistic of each rank's tokens (weight 0.01: ~2e-7 on the loss here).
    # A rank that did not all-reduce its gradients, or a wrong loss scale, moves step 2 by ~1e-2.
    one, ddp = train_stats(single), train_stats(two)
    assert sorted(ddp) == [1, 2]
    for epoch in (1, 2):
        for key in ("loss", "loss_ce", "z_loss", "acc"):
            assert ddp[epoch][key] == pytest.approx(one[epoch][key], rel=1e-5, abs=1e-6), (epoch, key)
        assert ddp[epoch]["lb_loss"] == pytest.approx(one[epoch]["lb_loss"], rel=1e-3)
    assert ddp[2]["loss"] < ddp[1]["loss"]


def test_only_rank_zero_writes_checkpoints_and_logs(two):
    saved = [Path(r["path"]).name for r in records(two, 0, "save")]
    assert records(two, 1, "save") == []
    # atomic saves write .<name>.<random>.tmp, then rename it to <name>
    names = sorted({n[1:].split(".pth")[0] + ".pth" for n in saved})
    assert names == ["1epoch.pth", "2epoch.pth", "checkpoint.pth"], saved
    log = (two / "run.log").read_text()
    host = os.uname()[1].split(".")[0]
    assert f"[{host}:0/2]" in log and "The training was finished at 2 epochs" in log
    assert f"[{host}:1/2]" not in log  # ESPnet logs at ERROR level on the other ranks
    assert not list(two.glob(".*.tmp"))


def test_resume_continues_a_two_process_run(uniform, single, two, tmp_path):
    _, cfg = uniform
    exp = tmp_path / "two"
    shutil.copytree(two, exp)
    shutil.rmtree(exp / "probe")
    before = train_stats(exp)
    res = train(cfg, exp, 2, "--resume", "true", "--max_epoch", "3")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "The training was resumed" in res.stderr
    after = train_stats(exp)
    assert sorted(after) == [1, 2, 3] and all(after[e] == before[e] for e in (1, 2))  # history kept
    one = train_stats(single)
    for key in ("loss", "loss_ce", "z_loss"):
        assert after[3][key] == pytest.approx(one[3][key], rel=1e-5, abs=1e-6), key
    # and so do the parameters after three AdamW steps of lr 0.01, to 1 % of one step
    a, b = weights(single / "3epoch.pth"), weights(exp / "3epoch.pth")
    assert set(a) == set(b)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    assert records(exp, 1, "save") == [] and records(exp, 0, "save")


def _lopsided_data(root: Path) -> Path:
    """One 2.4 s and one 0.4 s utterance: in a batch of both, each rank gets one."""
    long = write_datadir(root / "long", n=1, frames=60)
    short = write_datadir(root / "short", n=1, seed=1, sentences=SENTENCES[1:2], frames=10)
    data = root / "train"
    shutil.copytree(long, data)
    for name in ("wav.scp", "video.scp", "text", "frames_shape", "utt2num_frames", "utt2spk"):
        line = (short / name).read_text().replace("spk0-utt000", "spk1-utt001")
        (data / name).write_text((data / name).read_text() + line)
    for ext in ("wav", "npy"):
        shutil.copy(short / "media" / f"spk0-utt000.{ext}", data / "media" / f"spk1-utt001.{ext}")
    for name in ("wav.scp", "video.scp"):
        (data / name).write_text((data / name).read_text().replace(str(short / "media"), str(data / "media")))
    return data


def test_an_expert_idle_on_one_rank_trains_on(tmp_path, pretrained):
    # Eight experts, top-1: the 0.4 s utterance gives its rank 5 tokens per modality, so at most 5
    # experts see a token there while the other rank's 30 tokens reach more of them.
    data = _lopsided_data(tmp_path)
    cfg = write_train_config(
        tmp_path / "c.yaml",
        pretrained,
        data,
        batch_size=2,
        max_epoch=2,
        num_iters_per_epoch=2,
        projector_conf={"num_experts": 8, "top_k": 1},
        preprocessor_conf={"crop_size": 96},
    )
    res = train(cfg, tmp_path / "exp", 2)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (records(tmp_path / "exp", r, "experts") for r in (0, 1))
    assert len(r0) == len(r1) == 2 * 2 * 2  # 2 epochs x 2 steps x (audio, video) pools
    lopsided = [
        (a["counts"], b["counts"])
        for a, b in zip(r0, r1)
        if any((x > 0) != (y > 0) for x, y in zip(a["counts"], b["counts"]))
    ]
    assert lopsided, "no step had an expert with tokens on one rank only"
    stats = train_stats(tmp_path / "exp")
    assert sorted(stats) == [1, 2] and all(torch.isfinite(torch.tensor(s["loss"])) for s in stats.values())


def test_sparse_experts_without_unused_parameters_are_refused(tmp_path, uniform):
    # Without find_unused_parameters DDP stops at the second step with "Expected to have finished
    # reduction in the prior iteration"; the model build says what to set instead.
    from smop.tasks.avsr import SmopAVSRTask

    _, cfg = uniform
    for sparse, unused in ((True, False), (True, True), (False, False)):
        conf = ["--projector_conf", "top_k=2", "--projector_conf", f"num_experts={4 if sparse else 2}"]
        args = SmopAVSRTask.get_parser().parse_args(
            ["--config", str(cfg), "--output_dir", str(tmp_path), *conf, "--unused_parameters", str(unused).lower()]
        )
        args.distributed = True  # what ESPnet's resolve_distributed_mode sets for two ranks
        if sparse and not unused:
            with pytest.raises(ValueError, match="--unused_parameters true"):
                SmopAVSRTask.build_model(args)
        else:
            SmopAVSRTask.build_model(args)
