"""Crash safety of training: atomic checkpoint files and kill-and-resume through ESPnet's trainer."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from smop.tasks.trainer import atomic_torch_save, weights_only_torch_load
from tiny_experiment import write_train_config


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("killed while writing")


def test_interrupted_save_leaves_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pth"
    with atomic_torch_save():
        torch.save({"epoch": 1}, target)
        with pytest.raises(RuntimeError, match="killed while writing"):
            torch.save({"epoch": 2, "x": _Unpicklable()}, target)
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]  # no temporary left behind
    assert torch.save is not None and "atomic" not in repr(torch.save)


def _epoch(exp):
    with weights_only_torch_load():
        state = torch.load(exp / "checkpoint.pth", map_location="cpu")
    return state["reporter"]["epoch"], state["reporter"]["stats"]


def test_sigkill_then_resume_finishes_the_same_epochs(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, max_epoch=3, num_iters_per_epoch=8)
    exp = tmp_path / "exp"
    cmd = [
        sys.executable,
        "-m",
        "smop.bin.avsr_train",
        "--config",
        str(cfg),
        "--output_dir",
        str(exp),
        "--resume",
        "true",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not (exp / "1epoch.pth").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (exp / "1epoch.pth").exists(), "no first checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-way through epoch 2
    proc.wait()
    epoch, stats = _epoch(exp)
    assert epoch == 1 and not (exp / "3epoch.pth").exists()
    first_epoch_loss = stats[1]["train"]["loss"]

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "The training was resumed" in res.stderr
    epoch, stats = _epoch(exp)
    assert epoch == 3 and sorted(stats) == [1, 2, 3]
    assert stats[1]["train"]["loss"] == first_epoch_loss  # the history continues, it is not restarted
    assert stats[3]["train"]["loss"] < stats[1]["train"]["loss"]
    assert not list(exp.glob(".*.tmp"))


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_refuses_a_checkpoint_with_pickled_code(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, max_epoch=1, num_iters_per_epoch=2)
    exp, marker = tmp_path / "exp", tmp_path / "code_ran"
    exp.mkdir()
    torch.save({"model": {}, "reporter": _Payload(marker)}, exp / "checkpoint.pth")
    cmd = [
        sys.executable,
        "-m",
        "smop.bin.avsr_train",
        "--config",
        str(cfg),
        "--output_dir",
        str(exp),
        "--resume",
        "true",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "Weights only load failed" in res.stderr
    assert not marker.exists()


def test_init_param_refuses_a_file_with_pickled_code(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, max_epoch=1, num_iters_per_epoch=2)
    marker, bad = tmp_path / "code_ran", tmp_path / "asr.pth"
    torch.save({"projector.x": _Payload(marker)}, bad)
    cmd = [
        sys.executable,
        "-m",
        "smop.bin.avsr_train",
        "--config",
        str(cfg),
        "--output_dir",
        str(tmp_path / "exp"),
        "--init_param",
        str(bad),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "Weights only load failed" in res.stderr
    assert not marker.exists()
