"""Case 9: long recordings. The mini recipe's packed AVSR model decodes test utterances one by one,
and the same utterances joined into one recording, which ``Speech2Text.transcribe`` cuts into
segments at pauses (smop/inference/segments.py); the WER of both, and where the cuts fell.

    python -m bench.long_form [--pack egs/mini_av/avsr_smop/exp/train_dedr/pack] [--utterances 80]
"""

import os
from pathlib import Path
from typing import List, Sequence

import numpy as np

from bench.common import Row, parser, report
from bench.device import Device

MINI = Path(__file__).resolve().parents[1] / "egs" / "mini_av" / "avsr_smop"
NEAR = 3  # frames (120 ms): a cut this close to where one utterance ends and the next begins


def cuts_at_boundaries(cuts: Sequence[int], lengths: Sequence[int]) -> int:
    """How many of the ``cuts`` (frames) fall within NEAR frames of a boundary between utterances."""
    bounds = np.cumsum(lengths)[:-1]
    return int(sum(np.abs(bounds - c).min() <= NEAR for c in cuts)) if len(bounds) else 0


def run(
    device: Device = Device(),
    pack: Path = MINI / "exp" / "train_dedr" / "pack",
    data: Path = MINI / "data" / "test",
    utterances: int = 80,
) -> List[Row]:
    case = f"9 WER of {utterances} test utterances joined into one recording vs one by one"
    if not (pack / "meta.yaml").is_file() or not (data / "text").is_file():
        return [
            Row(
                case,
                "not measured",
                "",
                None,
                "reported",
                None,
                f"no packed mini model at {pack} or no {data}: run egs/mini_av/avsr_smop/run.sh first",
            )
        ]
    import jiwer

    from smop.data.loaders import MouthNpyReader, Wav16kReader, read_scp
    from smop.inference.speech2text import Speech2Text

    speech2text = Speech2Text.from_pretrained(str(pack), device=device.name)
    refs = read_scp(str(data / "text"))
    keys = sorted(refs)[:utterances]
    here = os.getcwd()
    os.chdir(data.parents[1])  # the data dir's paths are relative to its recipe
    try:
        wav, mouths = Wav16kReader(str(data / "wav.scp")), MouthNpyReader(str(data / "video.scp"))
        speech, video = [wav[k] for k in keys], [mouths[k] for k in keys]
    finally:
        os.chdir(here)
    one_by_one = speech2text.decode(speech, video, ids=keys)
    joined = speech2text.transcribe(speech=np.concatenate(speech), video=np.concatenate(video))
    reference = " ".join(refs[k] for k in keys)
    wer_joined = 100 * jiwer.wer(reference, joined.text)
    wer_single = 100 * jiwer.wer(reference, " ".join(h.text for h in one_by_one))
    lengths = [v.shape[0] for v in video]
    cuts = [round(start * 25) for start, _, _ in joined.segments[1:]]
    seconds = sum(lengths) / 25
    return [
        Row(
            f"{case} ({pack.parent.name}, {seconds:.0f} s, {len(joined.segments)} segments, "
            f"beam {speech2text.settings.beam_size})",
            f"{wer_joined:.1f} %",
            f"{wer_single:.1f} % (one by one)",
            wer_joined / wer_single if wer_single else None,
            "reported",
            None,
            f"{cuts_at_boundaries(cuts, lengths)} of {len(cuts)} cuts within {NEAR * 40} ms of the end of an "
            f"utterance; {len(keys) - 1} boundaries between utterances",
        )
    ]


def main(cmd=None):
    p = parser(__doc__, root=False)
    p.add_argument("--pack", type=Path, default=MINI / "exp" / "train_dedr" / "pack")
    p.add_argument("--utterances", type=int, default=80)
    args = p.parse_args(cmd)
    print(report(run(Device(args.device), args.pack, utterances=args.utterances)))


if __name__ == "__main__":
    main()
