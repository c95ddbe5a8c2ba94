"""Decoding an elastic model (issue 21) at each cell of its grid: avsr_inference and Speech2Text
give the same hypotheses at every modality and rate pair, the cell reaches the model, a cell the
model was not trained for is refused with the ones it has, and packs keep the grid."""

import json

import numpy as np
import pytest
import soundfile
import torch
import yaml

from smop.bin import avsr_inference, pack_model
from smop.data.inputs import data_triples
from smop.data.loaders import read_scp
from smop.inference.pack_reader import read_pack
from smop.inference.speech2text import Speech2Text
from smop.models.elastic import GridError, grid_cells, pair_name
from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import write_datadir, write_train_config

GRID = {"modalities": ["audio", "video", "audiovisual"], "rates": {"audio": [4, 8], "video": [2, 5]}}


@pytest.fixture(scope="module")
def elastic(tmp_path_factory, pretrained, datadir):
    root = tmp_path_factory.mktemp("elastic")
    cfg = write_train_config(
        root / "c.yaml",
        pretrained,
        datadir,
        max_epoch=1,
        num_iters_per_epoch=4,
        audio_compressor_conf={"rates": GRID["rates"]["audio"]},
        video_compressor_conf={"rates": GRID["rates"]["video"]},
        model_conf={"modalities": GRID["modalities"]},
    )
    SmopAVSRTask.main(cmd=["--config", str(cfg), "--output_dir", str(root / "exp")])
    decode = root / "decode.yaml"
    decode.write_text(yaml.safe_dump({"batch_size": 2, "beam_size": 1, "audio_rate": 8, "video_rate": 5}))
    pack_model.main(
        [
            "--exp_dir",
            str(root / "exp"),
            "--out_dir",
            str(root / "pack"),
            "--decode_config",
            str(decode),
            "--copy_pretrained",
            "all",
        ]
    )
    return root, write_datadir(root / "test", n=3, seed=5)


def _decode(root, test, out, **cell):
    cmd = ["--output_dir", str(out), "--train_config", str(root / "exp" / "config.yaml")]
    cmd += ["--model_file", str(root / "exp" / "valid.loss.ave.pth"), "--batch_size", "2", "--num_workers", "0"]
    for t in data_triples(test, "audiovisual"):
        cmd += ["--data_path_and_name_and_type", ",".join(t)]
    for k, v in cell.items():
        cmd += [f"--{k}", str(v)]
    avsr_inference.main(cmd)
    hyps = dict(
        line.split(" ", 1) if " " in line else (line, "")
        for line in (out / "1best_recog" / "text").read_text().splitlines()
    )
    return hyps, json.loads((out / "expert_usage.json").read_text())


def _media(test):
    keys = sorted(read_scp(str(test / "wav.scp")))
    speech = [soundfile.read(read_scp(str(test / "wav.scp"))[k], dtype="float32")[0] for k in keys]
    video = [np.load(read_scp(str(test / "video.scp"))[k]) for k in keys]
    return keys, speech, video


def test_avsr_inference_equals_speech2text_at_every_cell(elastic, tmp_path):
    root, test = elastic
    keys, speech, video = _media(test)
    tokens = {}
    for modality, pair in grid_cells(GRID):
        cell = dict(modality=modality, **{f"{m}_rate": r for m, r in pair.items()})
        hyps, usage = _decode(root, test, tmp_path / f"{modality}_{pair_name(pair)}", **cell)
        assert set(usage) == set(pair)  # the modality's inputs only are routed
        for m, r in pair.items():
            tokens.setdefault((m, r), set()).add(sum(usage[m]["top1"]))
        s2t = Speech2Text.from_pretrained(str(root / "pack"), **cell)
        assert s2t.modality == modality and s2t.rates == pair
        given = dict(speech=speech if "audio" in pair else None, video=video if "video" in pair else None)
        got = s2t(**{k: v for k, v in given.items() if v is not None})
        assert [h.text for h in got] == [hyps[k] for k in keys], cell
        assert all(h.blanked == () for h in got)
    # the rate reached the compressor: a higher rate routes fewer tokens, the same at every cell
    assert all(len(v) == 1 for v in tokens.values())
    assert tokens[("audio", 8)].pop() < tokens[("audio", 4)].pop()
    assert tokens[("video", 5)].pop() < tokens[("video", 2)].pop()


def test_the_pack_keeps_the_grid_and_its_decoding_cell(elastic):
    root, _ = elastic
    packed = read_pack(str(root / "pack"))
    assert packed.grid == GRID and packed.meta["grid"] == GRID
    assert packed.settings.audio_rate == 8 and packed.settings.video_rate == 5 and packed.settings.modality is None
    assert yaml.safe_load((root / "pack" / "decode.yaml").read_text())["audio_rate"] == 8
    s2t = Speech2Text.from_pretrained(str(root / "pack"))  # decode.yaml's cell
    assert s2t.modality == "audiovisual" and s2t.rates == {"audio": 8, "video": 5}
    summary = yaml.safe_load((root / "exp" / "model_summary.yaml").read_text())
    assert summary["elastic"] == GRID and summary["compressors"]["audio"]["rates"] == [4, 8]
    card = (root / "pack" / "README.md").read_text()
    assert "## Modalities and rates" in card and "| audio compression | avg_pool, rates 4, 8 | no parameters |" in card
    for row in ("| audio | 8 | - |", "| video | - | 5 |", "| audiovisual | 4 | 2 |", "| audiovisual | 8 | 5 |"):
        assert row in card


def test_a_cell_the_model_was_not_trained_for_is_refused_with_the_ones_it_has(elastic, tmp_path, capsys):
    root, test = elastic
    with pytest.raises(GridError, match=r"^audio_rate 16: this model was trained at audio rates 4, 8 only$"):
        Speech2Text.from_pretrained(str(root / "pack"), audio_rate=16)
    with pytest.raises(SystemExit) as exit_:
        _decode(root, test, tmp_path / "bad", video_rate=3)
    assert exit_.value.code == 2
    assert "error: video_rate 3: this model was trained at video rates 2, 5 only" in capsys.readouterr().err


def test_a_fixed_rate_model_refuses_another_rate_and_modality(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])
    torch.manual_seed(0)
    model = SmopAVSRTask.build_model(args)
    assert model.decoding_choice() == ("audiovisual", {"audio": 4, "video": 2})
    from smop.inference.settings import DecodeSettings

    with pytest.raises(GridError, match=r"^audio_rate 16: this model was trained at audio rates 4 only$"):
        Speech2Text(model, args, DecodeSettings(audio_rate=16))
    with pytest.raises(GridError, match=r"^modality 'audio': this model was trained for audiovisual only$"):
        Speech2Text(model, args, DecodeSettings(modality="audio"))
    # the default, or its own rates named, decode as before
    assert Speech2Text(model, args, DecodeSettings(audio_rate=4, video_rate=2)).rates == {"audio": 4, "video": 2}


def test_transcribe_decodes_the_cell_it_is_given(elastic, tmp_path, capsys):
    from smop.bin import transcribe
    from tiny_pack import write_wave

    root, _ = elastic
    wav = write_wave(tmp_path / "talk.wav", 1.2)
    out = tmp_path / "out.json"
    transcribe.main(
        [
            str(wav),
            "--model",
            str(root / "pack"),
            "--modality",
            "audio",
            "--audio_rate",
            "4",
            "--output_format",
            "json",
            "--output",
            str(out),
            "--num_workers",
            "1",
        ]
    )
    got = json.loads(out.read_text())
    assert got["settings"]["modality"] == "audio" and got["settings"]["audio_rate"] == 4
    s2t = Speech2Text.from_pretrained(str(root / "pack"), modality="audio", audio_rate=4)
    assert got["files"][0]["text"] == s2t.transcribe(speech=soundfile.read(wav, dtype="float32")[0]).text
    with pytest.raises(SystemExit) as exit_:
        transcribe.main([str(wav), "--model", str(root / "pack"), "--audio_rate", "16"])
    assert str(exit_.value.code) == "smop-transcribe: audio_rate 16: this model was trained at audio rates 4, 8 only"
