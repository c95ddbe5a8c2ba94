"""The benchmark machinery on tiny models: what it times is what it claims to time."""

import sys

import pytest
import torch

from bench import sparse_dispatch
from bench.common import Row, report
from bench.decode_timing import STAGES, select, synthetic_batch, timed_decode
from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import write_train_config


def test_sparse_dispatch_rows():
    rows = sparse_dispatch.run(tokens=32, experts=(4,), repeats=1)
    speed, diff = rows
    assert speed.ratio > 0 and "E=4" in speed.case
    assert diff.met is True and float(diff.measured) <= 1e-5


def test_timed_decode_generates_the_fixed_tokens_and_splits_the_time(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    torch.manual_seed(0)
    model = SmopAVSRTask.build_model(args).eval()
    batch = synthetic_batch(3, [1.0, 0.6, 0.8])
    assert batch["speech_lengths"].tolist() == [16000, 9600, 12800] and batch["video_lengths"].tolist() == [25, 15, 20]
    assert not batch["speech"][1, 9600:].any() and not batch["video"][1, 15:].any()
    for beam in (1, 2):
        t = timed_decode(model, batch, new_tokens=5, beam_size=beam)
        assert t["steps"] == 6 and len(t["hyps"]) == 3  # 5 forced tokens, then EOS at the budget
        assert all(t[s] > 0 for s in STAGES) and abs(t["total"] - sum(t[s] for s in STAGES)) < 1e-9
    one = select(batch, [1])
    assert one["speech"].shape == (1, 9600) and one["video"].shape[1] == 15


def test_report_lists_notes_under_the_table():
    text = report([Row("a", "1 s", "2 s", 0.5, "≤ 1", True, "why"), Row("b", "x", met=False)])
    assert "| a | 1 s | 2 s | 0.5 | ≤ 1 | yes |" in text and "| b | x |  |  |  | **no** |" in text
    assert text.splitlines()[-1] == "- a: why"


def test_long_form_cuts_at_boundaries_and_without_a_model(tmp_path):
    from bench.long_form import cuts_at_boundaries, run

    # utterances of 50, 60 and 40 frames end at 50 and 110: cuts at 48 and 112 are near, 80 and 114 not
    assert cuts_at_boundaries([48, 80, 112, 114], [50, 60, 40]) == 2
    assert cuts_at_boundaries([10], [50]) == 0
    (row,) = run(pack=tmp_path / "no_pack", data=tmp_path / "no_data")
    assert row.measured == "not measured" and "run egs/mini_av/avsr_smop/run.sh first" in row.note


def test_long_form_names_an_unknown_or_missing_vad_rule(monkeypatch, capsys):
    from bench.long_form import main, missing_vad

    with pytest.raises(SystemExit):
        main(["--vad", "energy,webrtc"])
    assert "--vad: unknown rule 'webrtc'; choose from energy, silero" in capsys.readouterr().err
    assert missing_vad("energy") == ""
    monkeypatch.setitem(sys.modules, "silero_vad", None)  # as if it were not installed
    assert "pip install 'smop[vad]'" in missing_vad("silero")
