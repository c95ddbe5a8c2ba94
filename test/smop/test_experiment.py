"""The experiment folder: the decoding record, scored sets in order, the noisy-set rule, expert usage."""

import json

import pytest
import yaml

from smop.experiment import (
    DecodeRecord,
    ExperimentDir,
    ExperimentError,
    describe_projector,
    is_noisy,
    set_order,
    snr_of,
)
from smop.inference.settings import DecodeSettings


def _record(out, **changes):
    values = dict(
        output_dir=str(out),
        data=[("data/test/wav.scp", "speech", "wav16k")],
        train_config="exp/x/config.yaml",
        model_file="exp/x/valid.loss.ave.pth",
        settings=DecodeSettings(beam_size=3),
        key_file="keys.1.scp",
        versions={"espnet": "202511"},
    )
    return DecodeRecord(**{**values, **changes})


def test_a_decode_record_reads_back_as_written(tmp_path):
    record = _record(tmp_path / "test")
    path = record.write()
    assert path == tmp_path / "test" / "decode_config.yaml"
    assert DecodeRecord.read(path) == record
    assert yaml.safe_load(path.read_text())["settings"]["beam_size"] == 3


def test_a_record_of_an_older_smop_reads_too_and_other_files_are_refused(tmp_path):
    path = tmp_path / "decode_config.yaml"
    args = {
        "output_dir": "o",
        "data_path_and_name_and_type": [["a", "speech", "wav16k"]],
        "train_config": "c.yaml",
        "model_file": "m.pth",
        "key_file": None,
        "batch_size": 4,
        "beam_size": 2,
        "seed": 1,
        "dtype": "float32",
    }
    path.write_text(yaml.safe_dump({"args": args, "versions": {}}))
    old = DecodeRecord.read(path)
    assert old.settings == DecodeSettings(batch_size=4, beam_size=2) and old.data == [("a", "speech", "wav16k")]
    assert old.model_file == "m.pth" and old.seed == 1
    path.write_text(yaml.safe_dump({"beam_size": 2}))
    with pytest.raises(ExperimentError, match="not a decoding record"):
        DecodeRecord.read(path)


def test_noisy_sets_are_named_and_ordered_after_their_clean_set():
    names = ["test_snr5", "dev", "test", "test_snr-5", "test_snr0", "dev_snr10"]
    assert sorted(names, key=set_order) == ["dev", "dev_snr10", "test", "test_snr-5", "test_snr0", "test_snr5"]
    assert [snr_of(n) for n in ("test", "test_snr-5", "x_snr2.5")] == ["clean", "-5", "2.5"]
    assert is_noisy("test_snr0") and not is_noisy("snr_test")


def _scored(decoding, name, err, usage):
    (decoding / name / "score_wer").mkdir(parents=True)
    (decoding / name / "score_wer" / "wer.json").write_text(
        json.dumps(
            {
                "counts": {"snt": 2, "wrd": 10},
                "percent": {"corr": 90.0, "sub": 10.0, "del": 0.0, "ins": 0.0, "err": err, "s_err": 50.0},
            }
        )
    )
    (decoding / name / "expert_usage.json").write_text(json.dumps({"audio": {"top1": usage, "top2": usage}}))


def test_scored_sets_wer_table_and_expert_usage_of_the_clean_sets(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    for name, err, usage in (("test_snr0", 30.0, [5, 5]), ("test", 10.0, [1, 2]), ("valid", 12.0, [3, 4])):
        _scored(exp / "decode_d", name, err, usage)
    decoding = exp.decoding("decode_d")
    sets = decoding.scored_sets()
    assert [s.name for s in sets] == ["test", "test_snr0", "valid"]
    assert (sets[1].snr, sets[1].utterances, sets[1].words) == ("0", 2, 10)
    table, errors = decoding.wer_table(["test", "test_snr0", "test_snr5"])
    assert errors == {"test": 10.0, "test_snr0": 30.0}
    assert table[2] == "|test|clean|2|10|90.0|10.0|0.0|0.0|10.0|50.0|" and table[4] == "|test_snr5|5|-|-|-|-|-|-|-|-|"
    usage, read = decoding.expert_usage()
    assert read == ["test", "valid"] and usage == {"audio": {"top1": [4, 6], "top2": [4, 6]}}
    assert decoding.expert_usage(["test_snr0"]) == ({"audio": {"top1": [5, 5], "top2": [5, 5]}}, ["test_snr0"])


def test_the_projector_is_described_as_built():
    sparse = {"type": "SmopProjector", "layout": "jedr", "num_experts": 8, "top_k": 2}
    assert describe_projector("smop", sparse) == "smop JEDR (E=8, k=2)"
    assert describe_projector("smop", sparse, short=False) == (
        "sparse mixture of projectors, JEDR layout, 8 experts, top-2 routing"
    )
    assert describe_projector("linear", {"type": "LinearProjector"}, short=False) == "linear projector"


def test_settings_of_a_decoding_must_agree(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    _record(exp / "decode_d" / "test").write()
    assert exp.decoding("decode_d").settings() == DecodeSettings(beam_size=3)
    _record(exp / "decode_d" / "valid", settings=DecodeSettings(beam_size=4)).write()
    with pytest.raises(ExperimentError, match="decoded with different settings"):
        exp.decoding("decode_d").settings()
    assert exp.decoding("decode_d").checkpoints() == ["exp/x/valid.loss.ave.pth"]
