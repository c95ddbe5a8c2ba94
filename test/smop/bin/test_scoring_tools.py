import json

import numpy as np
import pytest
import soundfile

from smop.bin import make_noisy_set, merge_decodes, score_wer, split_keys
from tiny_experiment import write_datadir


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_score_wer_sclite_and_jiwer_agree(tmp_path):
    _write(tmp_path / "ref", ["s1-a bin blue at a one again", "s1-b set red in c three please", "s2-c lay white now"])
    _write(tmp_path / "hyp", ["s1-a bin blue at one again", "s1-b set red in see three please now", "s2-c"])
    _write(tmp_path / "utt2spk", ["s1-a s1", "s1-b s1", "s2-c s2"])
    score_wer.main(
        [
            "--ref",
            str(tmp_path / "ref"),
            "--hyp",
            str(tmp_path / "hyp"),
            "--utt2spk",
            str(tmp_path / "utt2spk"),
            "--output_dir",
            str(tmp_path / "score"),
        ]
    )
    r = json.loads((tmp_path / "score" / "wer.json").read_text())
    # 1 deletion; 1 substitution + 1 insertion; 3 deletions -> 6 errors over 15 words
    assert r["counts"]["wrd"] == 15 and r["counts"]["err"] == 6 and r["counts"]["snt"] == 3
    assert r["counts"]["del"] == 4 and r["counts"]["sub"] == 1 and r["counts"]["ins"] == 1
    assert r["wer"] == pytest.approx(40.0) and r["jiwer"]["wer"] == pytest.approx(40.0)
    assert (tmp_path / "score" / "ref.trn").read_text().splitlines()[0] == "bin blue at a one again (s1-s1-a)"
    assert "Sum/Avg" in (tmp_path / "score" / "result.txt").read_text()


def _score(tmp_path, refs, hyps):
    _write(tmp_path / "ref", refs)
    _write(tmp_path / "hyp", hyps)
    _write(tmp_path / "utt2spk", [f"{line.split()[0]} {line.split()[0].split('-')[0]}" for line in refs])
    args = ["--ref", "ref", "--hyp", "hyp", "--utt2spk", "utt2spk", "--output_dir", "score"]
    score_wer.main([str(tmp_path / a) if i % 2 else a for i, a in enumerate(args)])
    return json.loads((tmp_path / "score" / "wer.json").read_text())


# An untrained model's hypotheses: sclite's weighted alignment (sub 4, ins/del 3) counts 36 errors,
# jiwer's fewest-errors alignment 35 (found on a tiny elastic model's decoding).
POOR_REFS = [
    "spk0-utt000 bin blue at a one again",
    "spk0-utt002 set red in c three please",
    "spk1-utt001 place green by b two now",
    "spk1-utt003 lay white with d four soon",
]
POOR_HYPS = [
    "spk0-utt000 at at a one at at at red in",
    "spk0-utt002 at at a one at at at red in",
    "spk1-utt001 at at a one at at at red in",
    "spk1-utt003 at at a one at a in gred red v",
]


def test_score_wer_checks_sclite_at_its_own_costs_where_jiwer_counts_fewer(tmp_path):
    r = _score(tmp_path, POOR_REFS, POOR_HYPS)
    assert r["counts"]["err"] == 36 and r["counts"]["wrd"] == 24 and r["wer"] == pytest.approx(150.0)
    assert r["jiwer"]["err"] == 35 and r["check"]["err"] == [36, 36]


def test_weighted_errors_count_the_cheapest_paths():
    assert score_wer.weighted_errors("a b c".split(), "a b c".split()) == (0, 0)
    assert score_wer.weighted_errors("a b".split(), []) == (2, 2)
    assert score_wer.weighted_errors([], "x y".split()) == (2, 2)
    # one substitution (cost 4) beats a deletion and an insertion (6)
    assert score_wer.weighted_errors("a b c".split(), "a x c".split()) == (1, 1)
    # "bin blue at a one again" vs the first poor hypothesis: 2 sub, 1 del, 4 ins in sclite's report
    assert score_wer.weighted_errors(POOR_REFS[0].split()[1:], POOR_HYPS[0].split()[1:]) == (7, 7)


def test_score_wer_refuses_counts_that_do_not_check_out(tmp_path, monkeypatch):
    real = score_wer.parse_sclite

    def off_by_one(report):
        scores = real(report)
        scores["counts"]["err"] += 1
        return scores

    monkeypatch.setattr(score_wer, "parse_sclite", off_by_one)
    with pytest.raises(SystemExit, match=r"sclite 37 errors / 24 words; an alignment at sclite's costs 36 errors"):
        _score(tmp_path, POOR_REFS, POOR_HYPS)


def test_score_wer_refuses_incomplete_hypotheses(tmp_path):
    _write(tmp_path / "ref", ["u1 a b", "u2 c d"])
    _write(tmp_path / "hyp", ["u1 a b"])
    _write(tmp_path / "utt2spk", ["u1 s", "u2 s"])
    with pytest.raises(SystemExit, match=r"1 reference ids without a hypothesis \(e.g. \['u2'\]\)"):
        score_wer.main(
            [
                "--ref",
                str(tmp_path / "ref"),
                "--hyp",
                str(tmp_path / "hyp"),
                "--utt2spk",
                str(tmp_path / "utt2spk"),
                "--output_dir",
                str(tmp_path / "s"),
            ]
        )


def _job_output(logdir, j, rows):
    _write(logdir / f"output.{j}" / "1best_recog" / "text", [f"{k} {v}" for k, v in rows])
    _write(logdir / f"output.{j}" / "1best_recog" / "score", [f"{k} -1.0" for k, _ in rows])


def test_split_and_merge(tmp_path):
    _write(tmp_path / "text", [f"u{i} w{i}" for i in range(5)])
    split_keys.main(["--keys", str(tmp_path / "text"), "--nj", "2", "--out_prefix", str(tmp_path / "keys")])
    parts = [(tmp_path / f"keys.{j}.scp").read_text().split() for j in (1, 2)]
    assert parts == [["u0", "u1"], ["u2", "u3", "u4"]]
    log = tmp_path / "logdir"
    _job_output(log, 1, [("u0", "w0"), ("u1", "")])
    _job_output(log, 2, [("u2", "w2"), ("u3", "w3"), ("u4", "w4")])
    merge_decodes.main(
        ["--keys", str(tmp_path / "text"), "--nj", "2", "--logdir", str(log), "--output_dir", str(tmp_path / "out")]
    )
    assert (tmp_path / "out" / "text").read_text().splitlines() == ["u0 w0", "u1 ", "u2 w2", "u3 w3", "u4 w4"]


def test_merge_names_missing_utterances_and_jobs(tmp_path):
    _write(tmp_path / "text", [f"u{i} w" for i in range(3)])
    log = tmp_path / "logdir"
    _job_output(log, 1, [("u0", "w")])
    with pytest.raises(SystemExit, match=f"job 2 left no .*; see {log}/decode.2.log"):
        merge_decodes.main(
            ["--keys", str(tmp_path / "text"), "--nj", "2", "--logdir", str(log), "--output_dir", str(tmp_path / "o")]
        )
    with pytest.raises(SystemExit, match="job 2 left no .*; see exp/x/logdir/decode.2.log"):
        merge_decodes.main(
            [
                "--keys",
                str(tmp_path / "text"),
                "--nj",
                "2",
                "--logdir",
                str(log),
                "--output_dir",
                str(tmp_path / "o"),
                "--job_log",
                "exp/x/logdir/decode.JOB.log",
            ]
        )
    _job_output(log, 2, [("u1", "w")])
    with pytest.raises(SystemExit, match=r"covers 2 of 3 utterances: missing \['u2'\]"):
        merge_decodes.main(
            ["--keys", str(tmp_path / "text"), "--nj", "2", "--logdir", str(log), "--output_dir", str(tmp_path / "o")]
        )
    assert not (tmp_path / "o" / "text").exists()


def test_noisy_set_is_bit_identical_and_at_the_snr(tmp_path):
    src = write_datadir(tmp_path / "test", n=3)
    noise = np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1
    soundfile.write(tmp_path / "babble.wav", noise, 16000)
    outs = []
    for run in ("a", "b"):
        make_noisy_set.main(
            [
                "--src",
                str(src),
                "--dst",
                str(tmp_path / run),
                "--media_dir",
                str(tmp_path / f"m{run}"),
                "--noise",
                str(tmp_path / "babble.wav"),
                "--snr",
                "0",
                "--seed",
                "7",
            ]
        )
        outs.append(
            [soundfile.read(line.split()[1])[0] for line in (tmp_path / run / "wav.scp").read_text().splitlines()]
        )
    for a, b in zip(*outs):
        assert np.array_equal(a, b)
    clean = [soundfile.read(line.split()[1])[0] for line in (src / "wav.scp").read_text().splitlines()]
    for c, m in zip(clean, outs[0]):
        snr = 10 * np.log10(np.mean(c**2) / np.mean((m - c) ** 2))
        assert snr == pytest.approx(0.0, abs=0.05)
    assert (tmp_path / "a" / "video.scp").read_text() == (src / "video.scp").read_text()
    make_noisy_set.main(
        [
            "--src",
            str(src),
            "--dst",
            str(tmp_path / "c"),
            "--media_dir",
            str(tmp_path / "mc"),
            "--noise",
            str(tmp_path / "babble.wav"),
            "--snr",
            "0",
            "--seed",
            "8",
        ]
    )
    other = soundfile.read((tmp_path / "c" / "wav.scp").read_text().split()[1])[0]
    assert not np.array_equal(other, outs[0][0])
