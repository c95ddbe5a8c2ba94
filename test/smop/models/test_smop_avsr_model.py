"""The model names the utterances of a batch whose features or loss are not finite."""

import pytest
import torch

from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import write_train_config


def _model(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    torch.manual_seed(0)
    return SmopAVSRTask.build_model(args)


def _batch():
    return dict(
        text=torch.tensor([[5, 6, 7], [5, 6, -1]]),
        text_lengths=torch.tensor([3, 2]),
        speech=torch.randn(2, 16000) * 0.1,
        speech_lengths=torch.tensor([16000, 12000]),
        video=torch.randn(2, 25, 88, 88),
        video_lengths=torch.tensor([25, 19]),
        utt_id=["spk-a", "spk-b"],
    )


def test_non_finite_features_name_the_utterance(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir)
    batch = _batch()
    loss, stats, _ = model(**batch)
    assert torch.isfinite(loss)
    batch["video"][1, 3] = float("nan")
    with pytest.raises(FloatingPointError, match=r"video encoder output for utterances \['spk-b'\]"):
        model(**batch)


def test_non_finite_loss_names_the_batch(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir)
    with torch.no_grad():  # a broken trained weight: the loss, not the features, goes non-finite
        next(p for n, p in model.named_parameters() if n.startswith("projector.")).fill_(float("inf"))
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* in the batch \['spk-a', 'spk-b'\]"):
        model(**_batch())
