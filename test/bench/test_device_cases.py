"""Every benchmark case through the code that ``python -m bench --device cuda`` runs, here on the
CPU with the tiny models (a GPU run differs only in the device the tensors live on, the clock's
synchronisation and the memory counter), and the RESULTS.md layout."""

import pytest
import torch

from bench import batched_decoding, decode_throughput, projector_cost, rate_pairs, train_memory, whisper_length_aware
from bench.common import Row
from bench.device import Device
from bench.results import block_body, read_blocks, render

CPU = Device("cpu")


def _tiny(pretrained):
    return {k: pretrained[k] for k in ("whisper", "avhubert", "llm")}


def _figures(rows, n):
    assert len(rows) == n, [r.case for r in rows]
    return {r.case: r for r in rows}


def test_decode_throughput(pretrained, tmp_path):
    rows = _figures(
        decode_throughput.run(
            tmp_path,
            batches=(1, 2),
            seconds=1.0,
            new_tokens=3,
            beam_size=2,
            repeats=1,
            device=CPU,
            paths=_tiny(pretrained),
        ),
        2,
    )
    one, two = rows.values()
    assert "batch 1 (AVSR DEDR, 1 s utterances, beam 2, 3 tokens, bfloat16)" in one.case and one.ratio == 1
    assert two.ratio > 0 and two.measured.endswith("utt/s") and two.met is None  # the target is batch 8's


def test_projector_cost(pretrained, tmp_path):
    rows = projector_cost.run(
        tmp_path, batch=1, seconds=1.0, new_tokens=3, repeats=1, device=CPU, paths=_tiny(pretrained)
    )
    times = [r for r in _figures(rows, 8).values() if r.case.startswith("1 decode time")]
    assert [r.case.split(",")[1].strip() for r in times] == [
        "linear (1 x 1 s AVSR",
        "smop DEDR (1 x 1 s AVSR",
        "smop JEJR (1 x 1 s AVSR",
        "smop JEDR (1 x 1 s AVSR",
    ]
    assert all("float32" in r.case and r.ratio > 0 and "LLM generation" in r.note for r in times)


def test_rate_pairs(pretrained, tmp_path):
    rows = rate_pairs.run(
        tmp_path, batch=2, seconds=1.0, new_tokens=3, repeats=1, device=CPU, paths=_tiny(pretrained)
    )  # the LLM input lengths of each pair are checked inside: ceil(1 s x 50 or 25 Hz / rate)
    assert [r.case.split(" (")[0] for r in rows] == [
        "11 decode time at audio 4 / video 2",
        "11 decode time at audio 4 / video 5",
        "11 decode time at audio 16 / video 2",
        "11 decode time at audio 16 / video 5",
    ]
    assert [r.measured.split("; ")[1] for r in rows] == [
        "25 LLM tokens/s",
        "17.5 LLM tokens/s",
        "15.625 LLM tokens/s",
        "8.125 LLM tokens/s",
    ]
    assert rows[0].ratio == 1.0 and all(r.ratio > 0 for r in rows)
    assert [r.met is None for r in rows] == [True, True, True, False] and "projector" in rows[-1].target
    assert all("projector" in r.note and "LLM prefill" in r.note for r in rows)


def test_batched_decoding(pretrained, tmp_path):
    rows = batched_decoding.run(
        tmp_path,
        batches=(1, 2),
        prefix=4,
        new_tokens=3,
        repeats=1,
        beam_size=2,
        e2e_tokens=2,
        device=CPU,
        paths=_tiny(pretrained),
    )
    rows = _figures(rows, 6)  # 2a bf16 x 2, 2b x 2, 2a fp32 x 2 (CPU only)
    assert sum("float32" in c for c in rows) == 2
    assert rows["2b batched hypotheses = batch-1 hypotheses"].met is True


def test_train_memory_settings(pretrained, tmp_path):
    rows = _figures(train_memory.run(tmp_path, steps=1, batch=1, seconds=1.0, device=CPU, paths=_tiny(pretrained)), 6)
    ckpt = next(
        r
        for r in rows.values()
        if "with vs without LLM activation checkpointing" in r.case and "peak resident memory" in r.case
    )
    assert ckpt.ratio > 0 and ckpt.baseline.endswith("(bf16)")
    assert any("bf16 + LLM activation checkpointing vs fp32" in c for c in rows)
    size = rows["5 epoch checkpoint size vs trained parameters"]
    assert size.met is True


def test_llm_quantization(pretrained, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes (tools/install.sh --extra quant) is not installed")
    from bench import llm_quantization

    rows = _figures(llm_quantization.run(tmp_path, seconds=1.0, batch=1, device=CPU, llm=pretrained["llm"]), 8)
    four = rows["10 frozen LLM weights, 4-bit NF4 (double quant, float32 compute) vs bf16"]
    eight = rows["10 frozen LLM weights, 8-bit LLM.int8 vs bf16"]
    assert 0 < four.ratio < eight.ratio < 1 and four.met is (four.ratio <= 0.45)
    assert all(r.ratio > 0 for r in rows.values())


def test_lrs3_training_batch_is_the_recipes_step():
    from bench.real_sizes import lrs3_training_batch

    assert lrs3_training_batch() == {"utterances": 32, "use_amp": True}  # batch_bins 4000 / 125 frames


def test_whisper_length_aware(pretrained, tmp_path):
    rows = whisper_length_aware.run(
        tmp_path, mini_exp=None, batch=1, seconds=1.0, repeats=1, device=CPU, paths=_tiny(pretrained)
    )
    speed = _figures(rows, 3)["7 length-aware Whisper speed-up (Whisper-medium encoder, 1 x 1 s, float32)"]
    assert speed.ratio > 0


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        Device("cuda")


def test_results_keep_other_blocks_when_one_case_reruns():
    cases, only_on = ["a", "b", "g"], {"g": ("cuda", "GPU only")}
    blocks = {
        ("cpu", "a"): block_body("a", [Row("1 a", "1 s")], "old a"),
        ("cpu", "b"): block_body("b", [Row("2 b", "2 s")], "old b"),
    }
    text = render(blocks, cases, only_on)
    assert "Not measured yet" in text.split("## GPU")[1] and "(a, b, g)" in text.split("## GPU")[1]
    assert "Not run here: g (GPU only)" in text.split("## GPU")[0]
    again = read_blocks(text)
    assert again == blocks
    again[("cpu", "b")] = block_body("b", [Row("2 b", "3 s")], "new b")
    again[("cuda", "g")] = block_body("g", [Row("8 g", "9 utt/s")], "on a GPU")
    text = render(again, cases, only_on)
    cpu, gpu = text.split("## GPU")
    assert "old a" in cpu and "new b" in cpu and "old b" not in cpu and "| 2 b | 3 s |" in cpu
    assert "on a GPU" in gpu and "Not measured yet" not in gpu
