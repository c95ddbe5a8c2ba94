"""avsr.sh stages 2-5 with an elastic model (issue 21): stage 4 decodes it at each cell of its grid
(every modality at every rate pair) into a decoding dir named after the cell, the default cell into
the plain one, each reading only its modality's inputs. A tiny recipe dir, as test_recipe_backends
builds it; stage 5 scores each cell dir."""

import json

import pytest
from test_recipe_backends import avsr, tiny_recipe

from smop.experiment import DecodeRecord

DECODED = "decode_decode_valid.loss.ave"
CELLS = {  # decoding dir suffix -> (modality, audio rate, video rate)
    "": ("audiovisual", None, None),
    "_audio_a4": ("audio", 4, None),
    "_audio_a8": ("audio", 8, None),
    "_video_v2": ("video", None, 2),
    "_audiovisual_a8_v2": ("audiovisual", 8, 2),
}


@pytest.fixture(scope="module")
def elastic_exp(tmp_path_factory, pretrained):
    r = tmp_path_factory.mktemp("recipe")
    tiny_recipe(
        r,
        pretrained,
        "train_elastic.yaml",
        "batch_size: 2\nbeam_size: 1\nmax_new_tokens_min: 6\n",
        num_iters_per_epoch=4,
        audio_compressor_conf={"rates": [4, 8]},
        model_conf={"modalities": ["audio", "video", "audiovisual"]},
    )
    res = avsr(r, "--stage", "2", "--stop_stage", "5", "--train_config", "conf/train_elastic.yaml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return r / "exp" / "train_elastic", res.stdout


def test_stage_4_decodes_every_cell_into_its_own_dir(elastic_exp):
    exp, log = elastic_exp
    assert sorted(p.name for p in exp.glob(f"{DECODED}*")) == sorted(DECODED + s for s in CELLS)
    for suffix, (modality, audio_rate, video_rate) in CELLS.items():
        test = exp / (DECODED + suffix) / "test"
        assert len((test / "text").read_text().splitlines()) == 4
        assert json.loads((test / "score_wer" / "wer.json").read_text())["counts"]["wrd"] > 0
        record = DecodeRecord.read(test / "logdir" / "output.1" / "decode_config.yaml")
        settings = record.settings
        assert (settings.modality, settings.audio_rate, settings.video_rate) == (
            None if not suffix else modality,
            audio_rate,
            video_rate,
        )
        # a cell reads the inputs of its modality only
        names = sorted(name for _, name, _ in record.data)
        assert names == {"audio": ["speech"], "video": ["video"], "audiovisual": ["speech", "video"]}[modality]
    assert "Stage 4: Decoding (--modality audio --audio_rate 8):" in log


def test_stage_5_writes_the_grid_into_results(elastic_exp):
    exp, _ = elastic_exp
    text = (exp.parents[1] / "RESULTS.md").read_text()
    grid = text[text.index("### Every cell of its grid: WER (%)") :].splitlines()[4 : 4 + len(CELLS)]
    rows = [r.split("|")[1:5] for r in grid]  # modality, rates, tokens/s, WER on test
    order = ["", "_audiovisual_a8_v2", "_audio_a4", "_audio_a8", "_video_v2"]  # the default cell first
    assert [tuple(r[:3]) for r in rows] == [
        ("audiovisual", "audio 4 / video 2", "25"),
        ("audiovisual", "audio 8 / video 2", "18.75"),
        ("audio", "audio 4", "12.5"),
        ("audio", "audio 8", "6.25"),
        ("video", "video 2", "12.5"),
    ]
    for suffix, row in zip(order, rows):  # each cell's own scored WER
        wer = json.loads((exp / (DECODED + suffix) / "test" / "score_wer" / "wer.json").read_text())["wer"]
        assert row[3] == f"{wer:.1f}", (suffix, row)
