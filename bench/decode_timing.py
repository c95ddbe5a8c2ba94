"""Decoding pieces shared by the decode benchmarks: synthetic inputs and a per-stage timer.

The stages are timed on the model's own calls: ``model.encode`` (hooks mark each modality's
encoder + compressor and the projector), then ``decoder.generate``, split into prefill and
generation by the moment the first logits reach the logits processors (after the prompt's
forward pass).
"""

import contextlib
import time
from typing import Callable, Dict, List

import torch
from transformers import LogitsProcessor

from bench.common import no_sync

STAGES = ("audio encoder", "video encoder", "projector", "LLM prefill", "LLM generation")


def synthetic_batch(batch: int, seconds, seed: int = 0, device: str = "cpu") -> dict:
    """Random speech (16 kHz) and 88x88 frames (25 fps) on ``device``; ``seconds`` is one value or
    one per utterance."""
    g = torch.Generator().manual_seed(seed)
    secs = [seconds] * batch if isinstance(seconds, (int, float)) else list(seconds)
    samples = torch.tensor([int(s * 16000) for s in secs])
    frames = torch.tensor([int(s * 25) for s in secs])
    speech = torch.randn(batch, int(samples.max()), generator=g) * 0.1
    video = torch.randn(batch, int(frames.max()), 88, 88, generator=g)
    for i in range(batch):  # zero padding, as the collate function gives
        speech[i, samples[i] :] = 0
        video[i, frames[i] :] = 0
    batch = dict(speech=speech, speech_lengths=samples, video=video, video_lengths=frames)
    return {k: v.to(device) for k, v in batch.items()}


def select(batch: dict, index: List[int]) -> dict:
    """Utterances ``index`` of a synthetic batch, trimmed to their own longest length."""
    s_len, v_len = batch["speech_lengths"][index], batch["video_lengths"][index]
    return dict(
        speech=batch["speech"][index, : int(s_len.max())],
        speech_lengths=s_len,
        video=batch["video"][index, : int(v_len.max())],
        video_lengths=v_len,
    )


class FirstLogitsTimer(LogitsProcessor):
    """Records when the first logits arrive (end of prefill) and counts the steps; ``sync`` waits
    for the device first."""

    def __init__(self, sync: Callable[[], None] = no_sync):
        self.first = None
        self.steps = 0
        self.sync = sync

    def __call__(self, input_ids, scores):
        if self.first is None:
            self.sync()
            self.first = time.perf_counter()
        self.steps += 1
        return scores


class NoEosBefore(LogitsProcessor):
    """Keeps EOS out until ``n`` tokens exist, so every run generates the same number of tokens
    (random weights would otherwise stop at random points)."""

    def __init__(self, n: int, eos_id: int):
        self.n, self.eos_id = n, eos_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] < self.n:
            scores[:, self.eos_id] = -float("inf")
        return scores


@contextlib.contextmanager
def _stage_clock(model, times: dict, sync: Callable[[], None]):
    """Adds to ``times`` the time of each stage of ``model.encode``: a modality's encoder and its
    compressor, and the projector (forward hooks, so the model's own code path is timed; each
    module is timed on its own: the model runs both encoders before either compressor)."""
    parts = [
        (f"{m} encoder", getattr(model, f"{m}_{part}")) for m in model.modalities for part in ("encoder", "compressor")
    ]
    parts.append(("projector", model.projector))
    handles, started = [], {}

    def start(key):
        sync()
        started[key] = time.perf_counter()

    def stop(key, name):
        sync()
        times[name] += time.perf_counter() - started[key]

    for key, (name, module) in enumerate(parts):
        handles.append(module.register_forward_pre_hook(lambda *_, key=key: start(key)))
        handles.append(module.register_forward_hook(lambda *_, key=key, name=name: stop(key, name)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def timed_decode(
    model, batch: dict, new_tokens: int, beam_size: int = 1, sync: Callable[[], None] = no_sync, rates=None
) -> dict:
    """Seconds per stage (and "total") of one decode of ``batch`` generating exactly ``new_tokens``
    tokens, with the hypotheses ("hyps"), the number of search steps ("steps") and of LLM input
    embeddings of the first utterance ("tokens"); ``sync`` waits for the device
    (bench.device.Device.sync) before each clock read; ``rates``: an elastic model's rate pair."""
    times = dict.fromkeys(STAGES, 0.0)
    with _stage_clock(model, times, sync):
        embeds, _ = model.encode(**batch, rates=rates)
    t = time.perf_counter()
    timer = FirstLogitsTimer(sync)
    budget = [new_tokens] * len(batch["speech_lengths"])
    hyps = model.decoder.generate(
        embeds, budget, beam_size, extra_processors=[NoEosBefore(new_tokens, model.decoder.eos_id), timer]
    )
    sync()
    end = time.perf_counter()
    times["LLM prefill"] = timer.first - t
    times["LLM generation"] = end - timer.first
    times["total"] = sum(times[s] for s in STAGES)
    times["hyps"] = hyps
    times["steps"] = timer.steps
    times["tokens"] = {m: int(lengths[0]) for m, (_, lengths) in embeds.items()}
    return times


def rotated_runs(cases: Dict[str, Callable[[], dict]], repeats: int, new_tokens: int) -> Dict[str, List[dict]]:
    """Each case's ``timed_decode`` (a call of ``cases[name]``) ``repeats`` times after a round that
    warms up; the cases interleaved and their order rotated each round, so that none is always first."""
    names = list(cases)
    runs: Dict[str, List[dict]] = {name: [] for name in names}
    for rep in range(repeats + 1):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t = cases[name]()
            assert t["steps"] == new_tokens + 1, (name, t["steps"])  # the fixed tokens, then EOS
            if rep:
                runs[name].append(t)
    return runs
