"""Case 9: long recordings. The mini recipe's packed AVSR model decodes test utterances one by one,
and the same utterances joined into one recording, which ``Speech2Text.transcribe`` cuts into
segments at pauses (smop/inference/segments.py), found by each voice activity rule (``--vad``);
the WER of both, and where the cuts fell. The noisy test sets (babble at 10 and 0 dB SNR, mixed
into each utterance by the recipe's stage 1) give noisy copies of the recording.

    python -m bench.long_form [--pack egs/mini_av/avsr_smop/exp/train_dedr/pack] [--data egs/mini_av/avsr_smop/data]
        [--sets test,test_snr10,test_snr0] [--vad energy,silero] [--utterances 80]
"""

import os
import time
from pathlib import Path
from typing import List, Sequence

import numpy as np

from bench.common import Row, parser, report
from bench.device import Device
from smop.inference.segments import VADS, check_vad

MINI = Path(__file__).resolve().parents[1] / "egs" / "mini_av" / "avsr_smop"
NEAR = 3  # frames (120 ms): a cut this close to where one utterance ends and the next begins
SETS = ("test", "test_snr10", "test_snr0")  # clean, babble at 10 dB and at 0 dB
TARGET = 1.25  # the joined recording's WER at most this many times that of its utterances one by one


def cuts_at_boundaries(cuts: Sequence[int], lengths: Sequence[int]) -> int:
    """How many of the ``cuts`` (frames) fall within NEAR frames of a boundary between utterances."""
    bounds = np.cumsum(lengths)[:-1]
    return int(sum(np.abs(bounds - c).min() <= NEAR for c in cuts)) if len(bounds) else 0


def read_set(data: Path, utterances: int):
    """The first ``utterances`` keys of a data dir, their references, waveforms and mouth crops."""
    from smop.data.loaders import MouthNpyReader, Wav16kReader, read_scp

    refs = read_scp(str(data / "text"))
    keys = sorted(refs)[:utterances]
    here = os.getcwd()
    os.chdir(data.parents[1])  # the data dir's paths are relative to its recipe
    try:
        wav, mouths = Wav16kReader(str(data / "wav.scp")), MouthNpyReader(str(data / "video.scp"))
        return keys, refs, [wav[k] for k in keys], [mouths[k] for k in keys]
    finally:
        os.chdir(here)


def missing_vad(vad: str) -> str:
    """Why ``vad`` cannot run here, or ''."""
    try:
        check_vad(vad)
    except ImportError as e:
        return str(e)
    return ""


def run(
    device: Device = Device(),
    pack: Path = MINI / "exp" / "train_dedr" / "pack",
    data: Path = MINI / "data",
    utterances: int = 80,
    sets: Sequence[str] = SETS,
    vads: Sequence[str] = VADS,
) -> List[Row]:
    case = f"9 WER of {utterances} test utterances joined into one recording vs one by one"
    if not (pack / "meta.yaml").is_file() or not (data / sets[0] / "text").is_file():
        return [
            Row(
                case,
                "not measured",
                "",
                None,
                "reported",
                None,
                f"no packed mini model at {pack} or no {data / sets[0]}: run egs/mini_av/avsr_smop/run.sh first",
            )
        ]
    import jiwer

    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(pack), device=device.name)
    rows = []
    for name in sets:
        if not (data / name / "text").is_file():
            rows.append(Row(f"{case} ({name})", "not measured", note=f"no data dir {data / name}"))
            continue
        keys, refs, speech, video = read_set(data / name, utterances)
        reference = " ".join(refs[k] for k in keys)
        wer_single = 100 * jiwer.wer(reference, " ".join(h.text for h in speech2text.decode(speech, video, ids=keys)))
        lengths = [v.shape[0] for v in video]
        seconds = sum(lengths) / 25
        for vad in vads:
            beam = speech2text.settings.beam_size
            title = f"{case} ({name}, vad {vad}, {pack.parent.name}, {seconds:.0f} s, beam {beam})"
            why = missing_vad(vad)
            if why:
                rows.append(Row(title, "not measured", f"{wer_single:.1f} % (one by one)", note=why))
                continue
            speech2text.vad = vad
            t = time.perf_counter()
            joined = speech2text.transcribe(speech=np.concatenate(speech), video=np.concatenate(video))
            took = time.perf_counter() - t
            wer_joined = 100 * jiwer.wer(reference, joined.text)
            ratio = wer_joined / wer_single if wer_single else None
            cuts = [round(start * 25) for start, _, _ in joined.segments[1:]]
            rows.append(
                Row(
                    title,
                    f"{wer_joined:.1f} %",
                    f"{wer_single:.1f} % (one by one)",
                    ratio,
                    f"<= {TARGET}x one by one",
                    None if ratio is None else ratio <= TARGET,
                    f"{len(joined.segments)} segments; {cuts_at_boundaries(cuts, lengths)} of {len(cuts)} cuts "
                    f"within {NEAR * 40} ms of the end of an utterance ({len(keys) - 1} boundaries); "
                    f"cut and decoded in {took:.1f} s",
                )
            )
    return rows


def main(cmd=None):
    p = parser(__doc__, root=False)
    p.add_argument("--pack", type=Path, default=MINI / "exp" / "train_dedr" / "pack")
    p.add_argument("--data", type=Path, default=MINI / "data", help="the folder of the recipe's data dirs")
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated data dirs under --data")
    p.add_argument("--vad", default=",".join(VADS), help=f"comma-separated voice activity rules ({', '.join(VADS)})")
    p.add_argument("--utterances", type=int, default=80)
    args = p.parse_args(cmd)
    vads = args.vad.split(",")
    for vad in vads:
        if vad not in VADS:
            p.error(f"--vad: unknown rule {vad!r}; choose from {', '.join(VADS)}")
    rows = run(Device(args.device), args.pack, args.data, args.utterances, args.sets.split(","), vads)
    print(report(rows))


if __name__ == "__main__":
    main()
