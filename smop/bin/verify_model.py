#!/usr/bin/env python3
"""Check that a packed model gives the WER its model card reports, on your copy of the test set.

    python -m smop.bin.verify_model --model exp/train_dedr/pack --data_dir data/test [--nj 4] [--device cuda]

Finds the card's set that ``--data_dir`` is (by the digests the pack records of its text, media
list and noise; see smop.data.fingerprint), decodes it with the pack's own decoding settings through
``Speech2Text`` (in ``--nj`` processes, each its contiguous share of the utterances, as the recipe's
jobs), scores it with sclite (smop.bin.score_wer) and prints one line: ``reproduced: ...`` (the
same number of errors as the card: exit 0), or what differs (exit 1): the data (which digest), the
settings (which key of decode.yaml), or the WER (both, and the first utterances whose hypotheses
differ from those the pack records). Data or settings that differ are reported without decoding.
A noise file named by a relative path in a noisy set's noise.txt is relative to this directory.
"""

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from smop.bin.avsr_inference import DecodeSet, decode_set
from smop.bin.split_keys import split
from smop.data.datadir import c_sorted, read_table, validate_data_dir, write_table
from smop.data.errors import DataError
from smop.data.fingerprint import SetFingerprint
from smop.data.inputs import data_triples, modality_of
from smop.experiment import SCORES, WER
from smop.inference.pack_layout import META, PackError
from smop.inference.pack_reader import PackedModel, read_pack
from smop.inference.pack_results import PackResults, SetResult
from smop.utils.log import setup_logging
from smop.utils.pretrained import PretrainedError

SHOWN = 3  # utterances named in a message


def match(data_dir: Path, results: PackResults) -> Tuple[SetResult, List[str], SetFingerprint]:
    """The card's set ``data_dir`` is (no differences), else the closest one (fewest differing
    digests; then a noisy set for a noisy one, a clean one for a clean one; then the same folder
    name), with what differs and the fingerprint of ``data_dir``."""
    found, fingerprints = [], {}
    for rank, s in enumerate(results.sets):
        media = tuple(s.media)
        if media not in fingerprints:  # sets of one model read the same tables: digest them once
            fingerprints[media] = SetFingerprint.of(data_dir, media)
        mine = fingerprints[media]
        diffs = mine.differences(s.fingerprint)
        kind = (mine.noise is None) != (s.fingerprint.noise is None)
        found.append(((len(diffs), kind, Path(s.data_dir).name != data_dir.name, rank), s, diffs, mine))
    _, s, diffs, mine = min(found, key=lambda t: t[0])
    return s, diffs, mine


def different_data(data_dir: Path, s: SetResult, diffs: Sequence[str], mine: SetFingerprint) -> str:
    what = "; ".join(f"{d}: card {s.fingerprint.digest(d)}, here {mine.digest(d)}" for d in diffs)
    digests = "digests differ" if len(diffs) > 1 else "digest differs"
    return (
        f"different data: {data_dir} is none of the card's sets; the closest is {s.name} "
        f"(`{s.data_dir}` when packed), whose {' and '.join(diffs)} {digests} ({what})"
    )


def different_settings(packed: PackedModel, results: PackResults, s: SetResult) -> Optional[str]:
    now, then = packed.settings.to_dict(), results.settings.to_dict()
    keys = [k for k in now if now[k] != then[k]]
    if not keys:
        return None
    return (
        f"different settings: the data is the card's {s.name}, but the pack's decode.yaml has "
        f"{', '.join(f'{k} {now[k]}' for k in keys)} where the card's results were decoded with "
        f"{', '.join(f'{k} {then[k]}' for k in keys)}"
    )


def _decode_job(model: str, device: str, one: DecodeSet, seed: int, sort_by_length: bool, threads: int):
    """One job of a parallel decoding (a process of its own: the model loads in each)."""
    import torch

    from smop.inference.speech2text import Speech2Text

    torch.set_num_threads(threads)
    return decode_set(Speech2Text.from_pretrained(model, device), one, seed, sort_by_length, num_workers=0)


def decode(packed: PackedModel, results: PackResults, data_dir: Path, work: Path, nj: int, device: str):
    """The hypotheses of ``data_dir`` by utterance, decoded in ``nj`` jobs as the recipe's stage 4."""
    from smop.inference.speech2text import Speech2Text

    data = data_triples(data_dir, modality_of(packed.config))
    jobs = []
    for j, part in enumerate(split([k for k, _ in read_table(data_dir / "text")], nj), 1):
        (work / "logdir").mkdir(parents=True, exist_ok=True)
        keys = work / "logdir" / f"keys.{j}.scp"
        keys.write_text("".join(f"{k}\n" for k in part))
        jobs.append(DecodeSet(str(work / "logdir" / f"output.{j}"), data, str(keys)))
    if nj == 1:
        speech2text = Speech2Text.from_pack(packed, device)
        return decode_set(speech2text, jobs[0], results.seed, results.sort_by_length, num_workers=0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // nj)  # the recipe's share: nproc / jobs
    texts: Dict[str, str] = {}
    with ProcessPoolExecutor(nj, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_decode_job, str(packed.folder), device, one, results.seed, results.sort_by_length, threads)
            for one in jobs
        ]
        for future in futures:
            texts.update(future.result())
    return texts


def score(data_dir: Path, texts: Dict[str, str], work: Path) -> dict:
    """sclite's counts of ``texts`` against ``data_dir``'s transcripts (smop.bin.score_wer)."""
    import json

    from smop.bin import score_wer

    write_table(work / "text", texts)
    score_wer.main(
        [
            "--ref",
            str(data_dir / "text"),
            "--hyp",
            str(work / "text"),
            "--utt2spk",
            str(data_dir / "utt2spk"),
            "--output_dir",
            str(work / SCORES),
        ]
    )
    return json.loads((work / SCORES / WER).read_text())["counts"]


def differing_utterances(packed: PackedModel, s: SetResult, data_dir: Path, texts: Dict[str, str]) -> str:
    """The first utterances whose hypotheses differ from the pack's, or (none recorded) that have errors."""
    recorded = packed.folder / s.hypotheses if s.hypotheses else None
    if recorded is not None and recorded.is_file():
        card = {k: v.split() for k, v in read_table(recorded, value_required=False)}
        ids = [k for k in c_sorted(texts) if texts[k].split() != card.get(k)]
        return f"first hypotheses that differ from the card's: {', '.join(ids[:SHOWN]) or 'none'}"
    refs = {k: v.split() for k, v in read_table(data_dir / "text")}
    ids = [k for k in c_sorted(texts) if texts[k].split() != refs[k]]
    return f"first utterances with errors: {', '.join(ids[:SHOWN]) or 'none'}"


def verify(packed: PackedModel, data_dir: Path, nj: int, device: str, output_dir: Optional[Path]) -> Tuple[bool, str]:
    """(reproduced, the line that says so or what differs)."""
    results = PackResults.from_meta(packed.meta, str(packed.folder / META))
    if results is None or not results.sets:
        raise PackError(
            f"{packed.folder}: its {META} records no scored test set (packed without a scored decoding, or by "
            "an older smop), so there is no result to check"
        )
    s, diffs, mine = match(data_dir, results)
    if diffs:
        return False, different_data(data_dir, s, diffs, mine)
    settings = different_settings(packed, results, s)
    if settings:
        return False, settings
    work = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="verify_model."))
    try:
        texts = decode(packed, results, data_dir, work, nj, device)
        counts = score(data_dir, texts, work)
    finally:
        if output_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    words, errors = int(counts["wrd"]), int(counts["err"])
    wer = 100.0 * errors / max(words, 1)
    if errors == s.errors and words == s.fingerprint.words:
        return True, f"reproduced: {s.name} WER {wer:.1f} % ({words} words), equal to the card"
    return False, (
        f"different WER: {s.name} WER {wer:.1f} % ({errors} errors in {words} words) here, {s.wer:.1f} % "
        f"({s.errors} errors in {s.fingerprint.words} words) on the card; "
        + differing_utterances(packed, s, data_dir, texts)
    )


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a packed model: its folder, or a hub id in the local HF cache")
    p.add_argument("--data_dir", type=Path, required=True, help="the Kaldi data dir of a test set the card reports")
    p.add_argument("--nj", type=int, default=1, help="decoding processes (each loads the model)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<N>")
    p.add_argument("--output_dir", type=Path, help="keep the hypotheses and sclite's report here (default: not kept)")
    return p


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    setup_logging("WARNING")
    try:
        if args.nj < 1:
            raise ValueError(f"--nj must be at least 1, got {args.nj}")
        if args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {args.device}: no CUDA device here; use --device cpu")
        if not args.data_dir.is_dir():
            raise ValueError(f"--data_dir {args.data_dir}: no such folder (a Kaldi data dir of a test set)")
        validate_data_dir(args.data_dir)
        ok, line = verify(read_pack(args.model), args.data_dir, args.nj, args.device, args.output_dir)
    except (PackError, PretrainedError, DataError, OSError, ValueError) as e:
        sys.exit(f"verify_model: {e}")
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
