"""The recipe's --seeds: where each seed's run lives and what it is trained with."""

import pytest
import yaml

from smop.bin import seed_run


def _config(path, **values):
    path.write_text(yaml.safe_dump({"seed": 0, **values}))
    return path


def test_the_configs_own_seed_trains_where_it_does_without_seeds(tmp_path, capsys):
    config = _config(tmp_path / "train_asr_dedr.yaml")
    seed_run.main(["--config", str(config), "--seeds", "0", "1", "2"])
    assert capsys.readouterr().out.splitlines() == [
        "exp/train_asr_dedr",
        "exp/train_asr_dedr_seed1 --seed 1",
        "exp/train_asr_dedr_seed2 --seed 2",
    ]


def test_a_model_started_from_another_starts_from_that_seeds_run(tmp_path):
    config = _config(
        tmp_path / "train_dedr.yaml",
        init_param=["exp/train_asr_dedr/valid.loss.ave.pth:decoder:decoder", "/abs/other.pth"],
    )
    runs = seed_run.seed_runs(config, [0, 3], tmp_path / "exp")
    assert runs[0] == (tmp_path / "exp" / "train_dedr", [])
    # The init entry names exp/ relative to the recipe: the same root as exp_root's last part.
    runs = seed_run.seed_runs(config, [0, 3])
    assert [str(runs[1][0])] + runs[1][1] == [
        "exp/train_dedr_seed3",
        "--seed",
        "3",
        "--init_param",
        "exp/train_asr_dedr_seed3/valid.loss.ave.pth:decoder:decoder",
        "/abs/other.pth",
    ]


def test_the_init_model_own_seed_is_read_from_its_written_config(tmp_path, monkeypatch):
    # The ASR run was trained with seed 5 (its config's own): seed 5's AVSR run starts from it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp" / "train_asr").mkdir(parents=True)
    (tmp_path / "exp" / "train_asr" / "config.yaml").write_text(yaml.safe_dump({"seed": 5}))
    config = _config(tmp_path / "train_av.yaml", init_param=["exp/train_asr/valid.loss.ave.pth"])
    runs = dict((str(r), o) for r, o in seed_run.seed_runs(config, [0, 5]))
    assert runs["exp/train_av_seed5"][-1] == "exp/train_asr/valid.loss.ave.pth"


def test_a_seed_given_twice_is_refused(tmp_path):
    config = _config(tmp_path / "c.yaml")
    with pytest.raises(SystemExit, match="a seed is given twice"):
        seed_run.main(["--config", str(config), "--seeds", "1", "1"])
