"""RESULTS.md from the files that training, decoding and scoring write (no log is parsed)."""

import json

import pytest
import yaml

from smop.bin import make_results


def _experiment(root, summary=True):
    exp = root / "exp" / "train_x"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({"projector": "smop", "max_epoch": 3, "modality": "audiovisual"}))
    if summary:
        (exp / "model_summary.yaml").write_text(
            yaml.safe_dump(
                {
                    "modality": "audiovisual",
                    "trainable": 1234567,
                    "total": 98765432,
                    "parts": {},
                    "projector": {"type": "SmopProjector", "layout": "jedr", "num_experts": 8, "top_k": 2},
                }
            )
        )
    score = exp / "decode_d" / "test" / "score_wer"
    score.mkdir(parents=True)
    (score / "wer.json").write_text(
        json.dumps(
            {
                "counts": {"snt": 10, "wrd": 60},
                "percent": {"corr": 90.0, "sub": 8.0, "del": 2.0, "ins": 1.0, "err": 11.0, "s_err": 40.0},
            }
        )
    )
    return exp


def test_results_describe_the_model_from_its_summary(tmp_path):
    exp = _experiment(tmp_path)
    make_results.main(
        ["--exp_dirs", str(exp), "--decode_tag", "decode_d", "--sets", "test", "--output", str(tmp_path / "RESULTS.md")]
    )
    text = (tmp_path / "RESULTS.md").read_text()
    assert (
        "- modality audiovisual, projector smop JEDR (E=8, k=2), max_epoch 3, 1,234,567 trainable of "
        "98,765,432 parameters"
    ) in text
    assert "|test|clean|10|60|90.0|8.0|2.0|1.0|11.0|40.0|" in text


def test_a_missing_summary_is_an_error(tmp_path):
    exp = _experiment(tmp_path, summary=False)
    with pytest.raises(FileNotFoundError, match="model_summary.yaml is missing: training writes it when it starts"):
        make_results.main(
            [
                "--exp_dirs",
                str(exp),
                "--decode_tag",
                "decode_d",
                "--sets",
                "test",
                "--output",
                str(tmp_path / "RESULTS.md"),
            ]
        )


def test_seed_runs_give_mean_and_range_per_set(tmp_path):
    exp = _experiment(tmp_path)
    runs = [exp]
    for seed, err in ((1, 13.0), (2, 9.5)):
        other = exp.parent / f"train_x_seed{seed}"
        (other / "decode_d" / "test" / "score_wer").mkdir(parents=True)
        score = json.loads((exp / "decode_d" / "test" / "score_wer" / "wer.json").read_text())
        score["percent"]["err"] = err
        (other / "decode_d" / "test" / "score_wer" / "wer.json").write_text(json.dumps(score))
        runs.append(other)
    make_results.main(
        ["--exp_dirs", str(exp), "--decode_tag", "decode_d", "--sets", "test", "--output", str(tmp_path / "R.md")]
        + ["--seed_runs"]
        + [str(r) for r in runs]
    )
    text = (tmp_path / "R.md").read_text()
    assert "## WER (%) over seeds: mean [min, max]" in text
    assert "|train_x|3|11.2 [9.5, 13.0]|" in text
    # a set that only some runs scored says how many
    from smop.experiment import seed_spread_table

    rows = seed_spread_table({"a": {"t": 5.0, "n": 9.0}, "a_seed1": {"t": 7.0}}, ["t", "n"])
    assert rows[-1] == "|a|2|6.0 [5.0, 7.0]|9.0 [9.0, 9.0] (1 of 2 runs)|"


def _scored(exp, tag, wers):
    """Scores of ``tag`` in ``exp``: WER (%) by set."""
    for name, err in wers.items():
        score = exp / tag / name / "score_wer"
        score.mkdir(parents=True)
        percent = {"corr": 100 - err, "sub": err, "del": 0.0, "ins": 0.0, "err": err, "s_err": 50.0}
        (score / "wer.json").write_text(json.dumps({"counts": {"snt": 10, "wrd": 60}, "percent": percent}))


def test_an_elastic_model_gets_its_grid_beside_the_fixed_rate_models(tmp_path):
    summary = yaml.safe_load((_experiment(tmp_path) / "model_summary.yaml").read_text())
    exps = {}
    for name, config in {
        "train_asr": {"modality": "audio"},  # the elastic model's default audio cell (rate 4)
        "train_av_a8": {"modality": "audiovisual", "audio_compressor_conf": {"rate": 8}},
        "train_elastic": {
            "modality": "audiovisual",
            "audio_compressor_conf": {"rates": [4, 8]},
            "model_conf": {"modalities": ["audio", "audiovisual"]},
        },
    }.items():
        exp = tmp_path / "exp" / name
        exp.mkdir(parents=True)
        (exp / "config.yaml").write_text(yaml.safe_dump({"projector": "smop", "max_epoch": 3, **config}))
        (exp / "model_summary.yaml").write_text(yaml.safe_dump(summary))
        exps[name] = exp
    _scored(exps["train_asr"], "decode_d", {"test": 6.0, "test_snr-5": 50.0})
    _scored(exps["train_av_a8"], "decode_d", {"test": 5.5})
    _scored(exps["train_elastic"], "decode_d", {"test": 5.0, "test_snr-5": 14.0})  # its default: AV a4 v2
    _scored(exps["train_elastic"], "decode_d_audiovisual_a8_v2", {"test": 6.5, "test_snr-5": 16.0})
    _scored(exps["train_elastic"], "decode_d_audio_a4", {"test": 7.0, "test_snr-5": 52.0})
    # audio_a8 was not decoded: dashes
    make_results.main(
        ["--exp_dirs", *map(str, exps.values()), "--decode_tag", "decode_d", "--sets", "test", "test_snr-5"]
        + ["--output", str(tmp_path / "R.md")]
    )
    text = (tmp_path / "R.md").read_text()
    grid = text[text.index("### Every cell of its grid") :].splitlines()[2:8]
    assert grid == [
        "|modality|rates|LLM tokens/s|test|test_snr-5|fixed-rate model (in brackets)|",
        "|---|---|---|---|---|---|",
        "|audiovisual|audio 4 / video 2|25|5.0|14.0|-|",
        "|audiovisual|audio 8 / video 2|18.75|6.5 (5.5)|16.0|train_av_a8|",
        "|audio|audio 4|12.5|7.0 (6.0)|52.0 (50.0)|train_asr|",
        "|audio|audio 8|6.25|-|-|-|",
    ]
    assert text.count("### Every cell of its grid") == 1  # the fixed-rate models have none
