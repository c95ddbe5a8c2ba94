import pytest

from smop.bin import write_shapes
from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder
from tiny_experiment import write_datadir, write_train_config


def test_shapes_of_several_data_dirs_in_one_run(tmp_path, pretrained, datadir):
    other = write_datadir(tmp_path / "valid", n=3, seed=2)
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    write_shapes.main(
        [
            "--train_config",
            str(cfg),
            "--data_dir",
            str(datadir),
            str(other),
            "--output_dir",
            str(tmp_path / "s" / "train"),
            str(tmp_path / "s" / "valid"),
        ]
    )
    encode = HFCausalLMDecoder.text_encoder(pretrained["llm"]).encode
    for src, out in ((datadir, "train"), (other, "valid")):
        text = dict(line.split(maxsplit=1) for line in (src / "text").read_text().splitlines())
        frames = dict(line.split() for line in (src / "utt2num_frames").read_text().splitlines())
        shapes = dict(line.split() for line in (tmp_path / "s" / out / "text_shape").read_text().splitlines())
        assert shapes == {u: str(len(encode(t))) for u, t in text.items()}
        assert dict(line.split() for line in (tmp_path / "s" / out / "frames_shape").read_text().splitlines()) == frames
        stats = (tmp_path / "s" / out / "token_stats.txt").read_text()
        seconds = sum(int(f) for f in frames.values()) / 25
        assert f"utterances {len(text)}\nduration {seconds:g} seconds ({seconds / 3600:.3f} h)\n" in stats


def test_unpaired_dirs_are_refused(tmp_path, pretrained, datadir):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir)
    with pytest.raises(SystemExit):
        write_shapes.main(["--train_config", str(cfg), "--data_dir", str(datadir), "--output_dir", "a", "b"])
