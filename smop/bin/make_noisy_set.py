#!/usr/bin/env python3
"""A noisy copy of a data dir: every utterance mixed with noise at one SNR.

The noise offset of each utterance comes from a hash of (seed, utterance id), so the same seed
gives bit-identical audio on every run and machine, and an SNR of 0 dB means 0 dB (not "clean").

    python -m smop.bin.make_noisy_set --src data/test --dst data/test_snr0 --media_dir dump/media/test_snr0 \
        --noise babble.wav --snr 0 --seed 0
"""

import argparse
import hashlib
import logging
import shutil
from pathlib import Path

import soundfile

from smop.data.datadir import TABLES, read_table, validate_data_dir, write_table
from smop.data.errors import DataError
from smop.data.fingerprint import NOISE_RECORD
from smop.data.inputs import INPUTS, SAMPLE_RATE
from smop.data.loaders import read_audio
from smop.data.noise import mix_at_snr
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("make_noisy_set")


def noise_offset(seed: int, utt: str, noise_length: int) -> int:
    digest = hashlib.sha256(f"{seed}:{utt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % noise_length


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--dst", type=Path, required=True)
    p.add_argument("--media_dir", type=Path, required=True)
    p.add_argument("--noise", type=Path, required=True)
    p.add_argument("--snr", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(cmd)
    setup_logging()
    noise, rate = soundfile.read(args.noise, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE or noise.shape[1] != 1:
        raise SystemExit(f"{args.noise}: {rate} Hz x {noise.shape[1]} ch; the noise must be 16 kHz mono")
    noise = noise[:, 0]
    args.media_dir.mkdir(parents=True, exist_ok=True)
    wav = {}
    wav_scp = INPUTS["audio"].scp
    for utt, path in read_table(args.src / wav_scp):
        rate, speech = read_audio(path)
        if rate != SAMPLE_RATE or speech.shape[1] != 1:
            raise DataError(f"utterance {utt}: {path} is not 16 kHz mono")
        speech = speech[:, 0]
        mixed = mix_at_snr(speech, noise, args.snr, noise_offset(args.seed, utt, noise.size))
        out = args.media_dir / f"{utt}.wav"
        with atomic_write(out, "wb") as f:  # float samples: no clipping at low SNRs
            soundfile.write(f, mixed, SAMPLE_RATE, format="WAV", subtype="FLOAT")
        wav[utt] = str(out)
    args.dst.mkdir(parents=True, exist_ok=True)
    write_table(args.dst / wav_scp, wav)
    for name in [t for t in TABLES if t != wav_scp] + ["spk2utt"]:
        if (args.src / name).exists():
            shutil.copyfile(args.src / name, args.dst / name)
    with atomic_write(args.dst / NOISE_RECORD) as f:
        f.write(f"noise {args.noise}\nsnr_db {args.snr}\nseed {args.seed}\n")
    n = validate_data_dir(args.dst)
    logger.info(f"{args.dst}: {n} utterances at {args.snr:g} dB")


if __name__ == "__main__":
    main()
