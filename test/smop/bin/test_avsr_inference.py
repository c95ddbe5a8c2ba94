import json

import pytest
import yaml

from smop.bin import avsr_inference
from smop.data.inputs import data_triples
from smop.experiment import DecodeRecord
from smop.tasks.avsr import SmopAVSRTask
from tiny_experiment import write_datadir, write_train_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pretrained, datadir):
    root = tmp_path_factory.mktemp("inference")
    cfg = write_train_config(root / "c.yaml", pretrained, datadir, max_epoch=1, num_iters_per_epoch=20)
    SmopAVSRTask.main(cmd=["--config", str(cfg), "--output_dir", str(root / "exp")])
    test = write_datadir(root / "test", n=7, seed=5)
    return root, test


def _decode(root, test, out, batch_size, beam_size=1, **kw):
    cmd = [
        "--output_dir",
        str(out),
        *[a for t in data_triples(test, "audiovisual") for a in ("--data_path_and_name_and_type", ",".join(t))],
        "--train_config",
        str(root / "exp" / "config.yaml"),
        "--model_file",
        str(root / "exp" / "valid.loss.ave.pth"),
        "--batch_size",
        str(batch_size),
        "--beam_size",
        str(beam_size),
        "--num_workers",
        "0",
    ]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    avsr_inference.main(cmd)
    return (out / "1best_recog" / "text").read_text()


@pytest.mark.parametrize("beam", [1, 3])
def test_batched_decoding_equals_batch_one(trained, tmp_path, beam):
    root, test = trained
    one = _decode(root, test, tmp_path / "b1", 1, beam)
    many = _decode(root, test, tmp_path / "b4", 4, beam)
    assert one == many
    keys = [line.split()[0] for line in many.splitlines()]
    assert keys == sorted(keys) and len(keys) == 7
    assert all(len(line.split()) > 1 for line in many.splitlines())  # non-empty hypotheses


def test_outputs_and_settings_are_recorded(trained, tmp_path):
    root, test = trained
    _decode(root, test, tmp_path / "d", 3, 2, max_new_tokens_min=5)
    scores = (tmp_path / "d" / "1best_recog" / "score").read_text().splitlines()
    assert len(scores) == 7 and all(float(s.split()[1]) <= 0 for s in scores)
    record = DecodeRecord.read(tmp_path / "d" / "decode_config.yaml")  # what decoded the set, typed
    assert record.settings.beam_size == 2 and record.settings.max_new_tokens_min == 5
    assert record.model_file == str(root / "exp" / "valid.loss.ave.pth") and record.output_dir == str(tmp_path / "d")
    assert record.versions["espnet"] == "202511"
    usage = json.loads((tmp_path / "d" / "expert_usage.json").read_text())
    assert set(usage) == {"audio", "video"}
    for m in usage:  # tokens per expert, as first and as second choice: every token counted once per rank
        assert set(usage[m]) == {"top1", "top2"} and len(usage[m]["top1"]) == 4
        assert all(isinstance(c, int) for c in usage[m]["top1"] + usage[m]["top2"])
        assert sum(usage[m]["top1"]) == sum(usage[m]["top2"]) > 0


def test_decoding_twice_gives_the_same_hypotheses(trained, tmp_path):
    root, test = trained
    a = _decode(root, test, tmp_path / "a", 3, 3)
    b = _decode(root, test, tmp_path / "b", 3, 3)
    assert a == b
    assert (tmp_path / "a" / "1best_recog" / "score").read_text() == (
        tmp_path / "b" / "1best_recog" / "score"
    ).read_text()
    gen = yaml.safe_load((tmp_path / "a" / "generation_config.yaml").read_text())
    assert gen["generation"]["do_sample"] is False and gen["generation"]["num_beams"] == 3
    assert gen["generation"]["early_stopping"] is False  # transformers' default, as the authors decoded
    assert gen["settings"] == {
        "batch_size": 3,
        "beam_size": 3,
        "max_new_tokens_per_second": 10.0,
        "max_new_tokens_min": 10,
        "early_stopping": False,
        "dtype": "float32",
    }
    assert gen["model"]["projector"] == "smop"


def test_early_stopping_reaches_the_search(trained, tmp_path, monkeypatch):
    from smop.models.smop_avsr_model import SmopAVSRModel

    root, test = trained
    seen = []
    recognize = SmopAVSRModel.recognize

    def spy(self, *args, **kw):
        seen.append(kw["early_stopping"])
        return recognize(self, *args, **kw)

    monkeypatch.setattr(SmopAVSRModel, "recognize", spy)
    _decode(root, test, tmp_path / "e", 4, 3, early_stopping="true")
    assert seen == [True, True]
    gen = yaml.safe_load((tmp_path / "e" / "generation_config.yaml").read_text())
    assert gen["generation"]["early_stopping"] is True and gen["settings"]["early_stopping"] is True


def test_key_file_restricts_and_orders(trained, tmp_path):
    root, test = trained
    keys = [line.split()[0] for line in (test / "wav.scp").read_text().splitlines()]
    key_file = tmp_path / "keys"
    key_file.write_text("".join(f"{k}\n" for k in reversed(keys[:3])))
    text = _decode(root, test, tmp_path / "k", 2, key_file=key_file)
    assert [line.split()[0] for line in text.splitlines()] == sorted(keys[:3])


def test_decoder_sees_the_inputs_training_sees(trained, tmp_path, monkeypatch):
    """Each utterance goes through the preprocessor once, and model.recognize gets exactly what
    the training-time preprocessor makes of it (a second pass once normalised the video twice)."""
    import numpy as np

    from smop.data.loaders import MouthNpyReader, Wav16kReader
    from smop.models.smop_avsr_model import SmopAVSRModel

    root, test = trained
    seen, calls = {}, []
    recognize = SmopAVSRModel.recognize

    def spy(self, speech=None, speech_lengths=None, video=None, video_lengths=None, utt_id=None, **kw):
        for i, u in enumerate(utt_id):
            seen[u] = (speech[i, : int(speech_lengths[i])].numpy(), video[i, : int(video_lengths[i])].numpy())
        return recognize(self, speech, speech_lengths, video, video_lengths, utt_id=utt_id, **kw)

    build = SmopAVSRTask.build_preprocess_fn

    def counting(args, train):
        pre = build(args, train)

        def run(uid, data):
            calls.append(uid)
            return pre(uid, data)

        return run

    monkeypatch.setattr(SmopAVSRModel, "recognize", spy)
    monkeypatch.setattr(SmopAVSRTask, "build_preprocess_fn", classmethod(lambda cls, a, t: counting(a, t)))
    _decode(root, test, tmp_path / "s", 3)
    keys = sorted(Wav16kReader(str(test / "wav.scp")).keys())
    assert sorted(calls) == keys  # once each
    _, train_args = SmopAVSRTask.build_model_from_file(
        root / "exp" / "config.yaml", root / "exp" / "valid.loss.ave.pth"
    )
    pre = build(train_args, False)
    wav, vid = Wav16kReader(str(test / "wav.scp")), MouthNpyReader(str(test / "video.scp"))
    for u in keys:
        want = pre(u, {"speech": wav[u], "video": vid[u]})
        np.testing.assert_array_equal(seen[u][0], want["speech"])
        np.testing.assert_array_equal(seen[u][1], want["video"])


def test_an_utterance_missing_from_one_input_is_named(trained, tmp_path):
    root, test = trained
    lines = (test / "video.scp").read_text().splitlines()
    short = tmp_path / "video.scp"
    short.write_text("".join(f"{line}\n" for line in lines[1:]))
    cmd = [
        "--output_dir",
        str(tmp_path / "o"),
        "--data_path_and_name_and_type",
        f"{test}/wav.scp,speech,wav16k",
        "--data_path_and_name_and_type",
        f"{short},video,mouth_npy",
        "--train_config",
        str(root / "exp" / "config.yaml"),
        "--model_file",
        str(root / "exp" / "valid.loss.ave.pth"),
        "--num_workers",
        "0",
    ]
    missing = lines[0].split()[0]
    with pytest.raises(
        ValueError, match=f"1 of the {len(lines)} utterances of .*wav.scp are not in .*video.scp.*{missing}"
    ):
        avsr_inference.main(cmd)


def test_several_sets_in_one_run_equal_each_alone(trained, tmp_path):
    """One process decodes several test sets (the model loads once); each set's outputs are
    those of decoding it alone."""
    root, test = trained
    keys = [line.split()[0] for line in (test / "wav.scp").read_text().splitlines()]
    key_file = tmp_path / "keys"
    key_file.write_text("".join(f"{k}\n" for k in keys[2:5]))
    alone_all = _decode(root, test, tmp_path / "alone_all", 3, 2)
    alone_part = _decode(root, test, tmp_path / "alone_part", 3, 2, key_file=key_file)
    sets = []
    for out, keys_of_set in (("both_part", key_file), ("both_all", "none")):
        sets += [
            "--data_path_and_name_and_type",
            f"{test}/wav.scp,speech,wav16k",
            "--data_path_and_name_and_type",
            f"{test}/video.scp,video,mouth_npy",
            "--key_file",
            str(keys_of_set),
            "--output_dir",
            str(tmp_path / out),
        ]
    avsr_inference.main(
        sets
        + [
            "--train_config",
            str(root / "exp" / "config.yaml"),
            "--model_file",
            str(root / "exp" / "valid.loss.ave.pth"),
            "--batch_size",
            "3",
            "--beam_size",
            "2",
            "--num_workers",
            "0",
        ]
    )
    assert (tmp_path / "both_all" / "1best_recog" / "text").read_text() == alone_all
    assert (tmp_path / "both_part" / "1best_recog" / "text").read_text() == alone_part
    assert len(alone_part.splitlines()) == 3
    for out in ("both_part", "both_all"):
        recorded = DecodeRecord.read(tmp_path / out / "decode_config.yaml")
        assert recorded.output_dir == str(tmp_path / out)
        assert len(recorded.data) == 2
        assert json.loads((tmp_path / out / "expert_usage.json").read_text()).keys() == {"audio", "video"}


@pytest.mark.parametrize(
    "inputs, outputs, key_files, message",
    [
        (
            [("a", "speech", "t"), ("b", "video", "t"), ("c", "speech", "t")],
            ["x", "y"],
            None,
            "3 --data_path_and_name_and_type for 2",
        ),
        (
            [("a", "speech", "t"), ("b", "video", "t"), ("c", "video", "t"), ("d", "speech", "t")],
            ["x", "y"],
            None,
            "--output_dir y are",
        ),
        ([("a", "speech", "t"), ("c", "speech", "t")], ["x", "y"], ["k"], "1 --key_file for 2"),
    ],
)
def test_sets_that_do_not_match_are_refused(inputs, outputs, key_files, message):
    with pytest.raises(ValueError, match=message):
        avsr_inference.decode_sets(inputs, outputs, key_files)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_decoding_in_half_precision(trained, tmp_path, dtype):
    """The inputs are cast in torch (numpy, where ESPnet's dataset casts, has no bfloat16)."""
    root, test = trained
    text = _decode(root, test, tmp_path / dtype, 3, 2, dtype=dtype)
    assert len(text.splitlines()) == 7
    recorded = yaml.safe_load((tmp_path / dtype / "generation_config.yaml").read_text())
    assert recorded["settings"]["dtype"] == dtype
