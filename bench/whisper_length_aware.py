"""Case 7: Whisper encoding of short utterances, padded to the 30 s window against length-aware.

Speed and output difference: the Whisper-medium encoder at the real size (random weights, fp32 on
a CPU, bf16 on a GPU) on a batch of 5 s utterances, both ways. WER: the mini recipe's ASR model
(egs/mini_av/avsr_smop/exp/train_asr_dedr, if it has been trained) decodes the clean test set
with each setting through smop.bin.avsr_inference and the jiwer count.

    python -m bench.whisper_length_aware [--root /tmp/smop_real_models] [--mini_exp DIR] [--device cuda]
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import jiwer
import torch
import yaml

from bench.common import Row, interleaved_times, parser, report
from bench.device import Device
from bench.real_sizes import real_size_models
from smop.data.datadir import read_table
from smop.data.inputs import INPUTS
from smop.encoders.whisper_encoder import WhisperAudioEncoder

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "egs" / "mini_av" / "avsr_smop"


def speed_rows(paths: dict, batch: int, seconds: float, repeats: int, device: Device) -> List[Row]:
    dtype = device.frozen_dtype("float32")
    encoders = {
        la: WhisperAudioEncoder(paths["whisper"], length_aware=la, frozen_dtype=dtype).eval().to(device.name)
        for la in (False, True)
    }
    g = torch.Generator().manual_seed(0)
    speech = (torch.randn(batch, int(seconds * 16000), generator=g) * 0.1).to(device.name)
    lengths = torch.full((batch,), speech.shape[1], device=device.name)
    with torch.no_grad():
        t = interleaved_times(
            {la: (lambda la=la: encoders[la](speech, lengths)) for la in encoders}, repeats=repeats, sync=device.sync
        )
        full, _ = encoders[False](speech, lengths)
        short, n = encoders[True](speech, lengths)
    diff = (full[:, : int(n[0])] - short).abs()
    ratio = t[False] / t[True]
    what = f"Whisper-medium encoder, {batch} x {seconds:g} s, {dtype}"
    return [
        Row(
            f"7 length-aware Whisper speed-up ({what})",
            f"{t[True]:.2f} s",
            f"{t[False]:.2f} s (padded to 30 s)",
            ratio,
            "≥ 4×",
            ratio >= 4,
        ),
        Row(
            f"7 output difference over the valid frames ({what})",
            f"max {diff.max():.3g}, mean {diff.mean():.3g} (mean absolute output {full.abs().mean():.3g})",
            "",
            None,
            "reported",
            None,
            "Whisper attends over its 30 s of padding; without it the states change (random weights here)",
        ),
    ]


def decode_wer(exp: Path, length_aware: bool, nj: int = 2, device: Device = Device()) -> float:
    """WER (%) of the mini recipe's model on data/test with the given Whisper setting."""
    with tempfile.TemporaryDirectory() as d:
        cfg = yaml.safe_load((exp / "config.yaml").read_text())
        cfg["audio_encoder_conf"]["length_aware"] = length_aware
        cfg_path = Path(d) / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        out = Path(d) / "decode"
        env = {**os.environ, "OMP_NUM_THREADS": str(nj)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "smop.bin.avsr_inference",
                "--config",
                str(MINI / "conf" / "decode.yaml"),
                "--ngpu",
                str(int(device.gpu)),
                "--data_path_and_name_and_type",
                ",".join(INPUTS["audio"].triple(MINI / "data" / "test")),
                "--train_config",
                str(cfg_path),
                "--model_file",
                str(exp / "valid.loss.ave.pth"),
                "--output_dir",
                str(out),
            ],
            check=True,
            cwd=MINI,
            env=env,
            capture_output=True,
        )
        hyp = dict(read_table(out / "1best_recog" / "text"))
    ref = dict(read_table(MINI / "data" / "test" / "text"))
    missing = set(ref) - set(hyp)
    if missing:
        raise RuntimeError(f"decoding lost {len(missing)} utterances, e.g. {sorted(missing)[:3]}")
    keys = sorted(ref)
    return 100 * jiwer.wer([ref[k] for k in keys], [hyp.get(k, "") for k in keys])


def wer_rows(exp: Optional[Path], device: Device = Device()) -> List[Row]:
    if exp is None or not (exp / "valid.loss.ave.pth").exists():
        return [
            Row(
                "7 WER on the mini corpus, padded vs length-aware",
                "not measured",
                "",
                None,
                "reported",
                None,
                f"no trained mini model at {exp}; run egs/mini_av/avsr_smop/run.sh first",
            )
        ]
    trained = yaml.safe_load((exp / "config.yaml").read_text())["audio_encoder_conf"].get("length_aware", False)
    w = {la: decode_wer(exp, la, device=device) for la in (False, True)}
    return [
        Row(
            f"7 WER on the mini corpus test set ({exp.name}, trained with length_aware={trained})",
            f"{w[True]:.1f} % (length-aware)",
            f"{w[False]:.1f} % (padded to 30 s)",
            None,
            "reported",
            None,
            "the mini Whisper was pretrained on unpadded utterances, so padding at test time is a mismatch for it",
        )
    ]


def run(
    root: Path,
    mini_exp: Optional[Path] = MINI / "exp" / "train_asr_dedr",
    batch: int = 2,
    seconds: float = 5.0,
    repeats: int = 3,
    device: Device = Device(),
    paths: Optional[dict] = None,
) -> List[Row]:
    return speed_rows(paths or real_size_models(root), batch, seconds, repeats, device) + wer_rows(mini_exp, device)


def main(cmd=None):
    p = parser(__doc__)
    p.add_argument("--mini_exp", type=Path, default=MINI / "exp" / "train_asr_dedr")
    args = p.parse_args(cmd)
    rows = run(args.root, args.mini_exp, device=Device(args.device))
    print(report(rows))


if __name__ == "__main__":
    main()
