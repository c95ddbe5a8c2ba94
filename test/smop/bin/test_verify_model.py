"""A pack records what its scored sets were, and ``verify_model`` reproduces its results or names
what differs: the data (text, media list, noise), a decoding setting, or the WER."""

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from smop.bin import avsr_inference, make_noisy_set, merge_decodes, pack_model, score_wer, split_keys, verify_model
from smop.data.inputs import data_triples
from smop.utils.io import sha256_of
from tiny_experiment import add_to_hub_cache, write_datadir, write_train_config

SETS = ("test", "test_snr0")


@contextlib.contextmanager
def inside(folder: Path):
    """Run in ``folder`` (the recipe directory: the data dirs' and the experiment's paths are relative to it)."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, pretrained):
    """A recipe directory after stages 0-6 in small: a clean and a noisy test set decoded, scored, packed."""
    from smop.tasks.avsr import SmopAVSRTask

    root = tmp_path_factory.mktemp("verify")
    with inside(root):
        write_datadir(Path("data/train"))
        write_datadir(Path("data/test"), n=5, seed=5)
        rng = np.random.default_rng(0)
        soundfile.write("noise.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
        make_noisy_set.main(
            ["--src", "data/test", "--dst", "data/test_snr0", "--media_dir", "dump/test_snr0"]
            + ["--noise", "noise.wav", "--snr", "0"]
        )
        write_train_config(Path("train.yaml"), pretrained, Path("data/train"), max_epoch=1, num_iters_per_epoch=10)
        SmopAVSRTask.main(cmd=["--config", "train.yaml", "--output_dir", "exp/tiny"])
        # Stage 4: two jobs, each decoding its share of every set; their outputs merged, then scored.
        dec = "exp/tiny/decode_decode"
        for name in SETS:
            split_keys.main(["--keys", f"data/{name}/text", "--nj", "2", "--out_prefix", f"{dec}/{name}/logdir/keys"])
        for job in (1, 2):
            cmd = ["--train_config", "exp/tiny/config.yaml", "--model_file", "exp/tiny/valid.loss.ave.pth"]
            for name in SETS:
                for t in data_triples(f"data/{name}", "audiovisual"):
                    cmd += ["--data_path_and_name_and_type", ",".join(t)]
                cmd += ["--key_file", f"{dec}/{name}/logdir/keys.{job}.scp"]
                cmd += ["--output_dir", f"{dec}/{name}/logdir/output.{job}"]
            avsr_inference.main(cmd + ["--batch_size", "2", "--num_workers", "0"])
        for name in SETS:
            merge_decodes.main(
                ["--keys", f"data/{name}/text", "--nj", "2", "--logdir", f"{dec}/{name}/logdir"]
                + ["--output_dir", f"{dec}/{name}"]
            )
            score_wer.main(
                ["--ref", f"data/{name}/text", "--hyp", f"{dec}/{name}/text", "--utt2spk", f"data/{name}/utt2spk"]
                + ["--output_dir", f"{dec}/{name}/score_wer"]
            )
        pack_model.main(["--exp_dir", "exp/tiny", "--out_dir", "exp/tiny/pack", "--copy_pretrained", "all"])
    return root


def verify(root: Path, capsys, pack="exp/tiny/pack", data="data/test", *more):
    """(exit status, the printed line) of verify_model run in the recipe directory."""
    with inside(root):
        status = verify_model.main(["--model", str(pack), "--data_dir", str(data), *more])
    return status, capsys.readouterr().out.strip()


def test_the_pack_records_what_each_scored_set_was(recipe):
    pack = recipe / "exp" / "tiny" / "pack"
    results = yaml.safe_load((pack / "meta.yaml").read_text())["results"]
    assert results["settings"]["batch_size"] == 2 and results["seed"] == 0
    by_name = {s["name"]: s for s in results["sets"]}
    assert list(by_name) == list(SETS)
    clean, noisy = by_name["test"], by_name["test_snr0"]
    assert clean["data_dir"] == "data/test" and clean["media"] == ["video.scp", "wav.scp"]
    assert clean["fingerprint"]["utterances"] == 5
    assert clean["fingerprint"]["words"] == sum(len(line.split()) - 1 for line in open(recipe / "data/test/text"))
    assert clean["fingerprint"]["text_sha256"] == sha256_of(recipe / "data/test/text")
    # a noisy copy: the same transcripts and media names, its own noise
    assert noisy["fingerprint"]["text_sha256"] == clean["fingerprint"]["text_sha256"]
    assert noisy["fingerprint"]["media_sha256"] == clean["fingerprint"]["media_sha256"]
    assert clean["fingerprint"]["noise"] is None
    assert noisy["fingerprint"]["noise"] == {"sha256": sha256_of(recipe / "noise.wav"), "snr_db": 0.0, "seed": 0}
    wer = yaml.safe_load((recipe / "exp/tiny/decode_decode/test/score_wer/wer.json").read_text())
    assert clean["errors"] == wer["counts"]["err"]
    assert (pack / clean["hypotheses"]).read_text() == (recipe / "exp/tiny/decode_decode/test/text").read_text()
    card = (pack / "README.md").read_text()
    digest = clean["fingerprint"]["text_sha256"][:12]
    assert f"|test|`data/test`|5|{clean['fingerprint']['words']}|{digest}|" in card
    assert "|0 dB, seed 0, noise sha256 " in card and "smop.bin.verify_model --model" in card


@pytest.mark.parametrize("name", SETS)
def test_a_set_the_card_reports_is_reproduced(recipe, capsys, name):
    status, line = verify(recipe, capsys, "exp/tiny/pack", f"data/{name}")
    errors = {s["name"]: s for s in yaml.safe_load((recipe / "exp/tiny/pack/meta.yaml").read_text())["results"]["sets"]}
    words = errors[name]["fingerprint"]["words"]
    wer = 100 * errors[name]["errors"] / words
    assert line == f"reproduced: {name} WER {wer:.1f} % ({words} words), equal to the card"
    assert status == 0


def test_a_pack_in_the_hub_cache_is_found_by_its_id(recipe, capsys, tmp_path, monkeypatch):
    from huggingface_hub import constants

    add_to_hub_cache(tmp_path, "smop-test/tiny-verify", recipe / "exp" / "tiny" / "pack")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    status, line = verify(recipe, capsys, "smop-test/tiny-verify", "data/test_snr0")
    assert line.startswith("reproduced: test_snr0 WER") and status == 0


def test_two_jobs_reproduce_it_too(recipe, capsys):
    status, line = verify(recipe, capsys, "exp/tiny/pack", "data/test", "--nj", "2")
    assert line.startswith("reproduced: test WER") and status == 0


def test_a_changed_transcript_is_named(recipe, capsys):
    changed = recipe / "data" / "test_changed"
    shutil.copytree(recipe / "data" / "test", changed)
    lines = (changed / "text").read_text().splitlines()
    lines[0] += " extra"
    (changed / "text").write_text("\n".join(lines) + "\n")
    status, line = verify(recipe, capsys, "exp/tiny/pack", changed)
    assert status == 1
    assert line.startswith(f"different data: {changed} is none of the card's sets; the closest is test ")
    assert "whose text digest differs (text: card " in line and "media list" not in line


def test_a_different_media_list_is_named(recipe, capsys):
    swapped = recipe / "data" / "test_swapped"
    shutil.copytree(recipe / "data" / "test", swapped)
    rows = [line.split() for line in (swapped / "wav.scp").read_text().splitlines()]
    rows[0][1], rows[1][1] = rows[1][1], rows[0][1]  # two utterances' audio exchanged
    (swapped / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in rows))
    status, line = verify(recipe, capsys, "exp/tiny/pack", swapped)
    assert status == 1 and "the closest is test " in line and "whose media list digest differs" in line


def test_other_noise_is_named(recipe, capsys, tmp_path):
    with inside(recipe):
        make_noisy_set.main(
            ["--src", "data/test", "--dst", "data/test_snr5", "--media_dir", str(tmp_path / "m")]
            + ["--noise", "noise.wav", "--snr", "5"]
        )
    status, line = verify(recipe, capsys, "exp/tiny/pack", "data/test_snr5")
    assert status == 1 and "the closest is test_snr0 (`data/test_snr0` when packed), whose noise digest differs" in line
    assert "(noise: card 0 dB, seed 0, noise sha256 " in line and ", here 5 dB, seed 0, " in line


def test_a_pack_with_other_decoding_settings_names_them(recipe, capsys, tmp_path):
    settings = tmp_path / "decode.yaml"
    settings.write_text("batch_size: 2\nbeam_size: 3\n")
    with inside(recipe):
        pack_model.main(
            ["--exp_dir", "exp/tiny", "--out_dir", str(tmp_path / "pack"), "--decode_config", str(settings)]
            + ["--copy_pretrained", "all"]
        )
    capsys.readouterr()  # the pack's path
    status, line = verify(recipe, capsys, tmp_path / "pack", "data/test")
    assert status == 1
    assert line == (
        "different settings: the data is the card's test, but the pack's decode.yaml has beam_size 3 where the "
        "card's results were decoded with beam_size 1"
    )


def test_a_different_wer_gives_both_and_the_utterances(recipe, capsys, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(recipe / "exp" / "tiny" / "pack", pack)
    meta = yaml.safe_load((pack / "meta.yaml").read_text())
    clean = meta["results"]["sets"][0]
    clean["errors"] += 1
    (pack / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    # the recorded hypothesis of the first utterance altered too, as a released model's would differ
    hyps = (pack / clean["hypotheses"]).read_text().splitlines()
    first = hyps[0].split()[0]
    hyps[0] = f"{first} something else"
    (pack / clean["hypotheses"]).write_text("\n".join(hyps) + "\n")
    status, line = verify(recipe, capsys, pack, "data/test")
    words = clean["fingerprint"]["words"]
    here, card = clean["errors"] - 1, clean["errors"]
    assert status == 1
    assert line == (
        f"different WER: test WER {100 * here / words:.1f} % ({here} errors in {words} words) here, "
        f"{100 * card / words:.1f} % ({card} errors in {words} words) on the card; "
        f"first hypotheses that differ from the card's: {first}"
    )


def test_bad_arguments_are_one_line_errors(recipe, capsys, tmp_path):
    with pytest.raises(SystemExit, match=r"^verify_model: --data_dir .*nowhere: no such folder"):
        verify(recipe, capsys, "exp/tiny/pack", tmp_path / "nowhere")
    with pytest.raises(SystemExit, match=r"^verify_model: .*not a packed smop model"):
        verify(recipe, capsys, tmp_path, "data/test")
    with pytest.raises(SystemExit, match=r"^verify_model: --nj must be in 1\.\.5"):
        verify(recipe, capsys, "exp/tiny/pack", "data/test", "--nj", "9")
    bare = tmp_path / "bare"
    shutil.copytree(recipe / "exp" / "tiny" / "pack", bare)
    meta = yaml.safe_load((bare / "meta.yaml").read_text())
    meta["results"] = None
    (bare / "meta.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(SystemExit, match=r"records no scored test set"):
        verify(recipe, capsys, bare, "data/test")
