"""Generate the mini audio-visual corpus in the LRS3 layout.

    <out>/corpus/{pretrain,trainval,test}/<speaker>/<id>.mp4 + <id>.txt
    <out>/landmarks/{pretrain,trainval,test}/<speaker>/<id>.npy   (T, 68, 2), NaN = no face
    <out>/valid.id          <speaker>/<id> held out of trainval for validation
    <out>/babble.wav        babble noise from voices used in neither training nor test
    <out>/lm_text.txt       training transcripts, for pretraining the small LLM
    <out>/mean_face.npy     the reference face the faces are drawn from, for the mouth crops

Voices (espeak-ng language + variant): training m1-m5 f1-f3, test m6 m7 f4, babble others.
Everything is drawn from one seed, so the corpus is the same on every machine.

    python -m smop.mini.corpus --out downloads/mini_av --nj 2
"""

import argparse
import hashlib
import json
import logging
import multiprocessing
import random
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List

import numpy as np
import soundfile
from tqdm import tqdm

from smop.data.inputs import SAMPLE_RATE, SAMPLES_PER_FRAME
from smop.mini.face import FaceStyle, render
from smop.mini.grid import sample_sentence
from smop.mini.mean_face import write_mean_face
from smop.mini.tts import Voice, synthesize, word_timings
from smop.mini.visemes import viseme_track
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("mini_corpus")

LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-029")
# Many training voices (espeak-ng variants x accents), so that the held-out ones are new voices of
# a familiar kind rather than outliers; robotic and whispered variants are left out.
TRAIN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "f1",
    "f2",
    "f3",
    "Alex",
    "Alicia",
    "Andy",
    "Annie",
    "Lee",
    "Mike",
    "adam",
    "aunty",
    "belinda",
    "benjamin",
    "caleb",
    "david",
    "ed",
    "edward",
    "john",
    "linda",
    "max",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "steph",
    "zac",
)
TEST_VARIANTS = ("m6", "m7", "f4")
BABBLE_VOICES = (
    ("en-us", "m8"),
    ("en-gb", "f5"),
    ("en-us", "klatt"),
    ("en-gb", "klatt2"),
    ("en-us", "shelby"),
    ("en-gb", "travis"),
    ("en-029", "victor"),
    ("en-us", "norbert"),
)
FRAME_SIZE = 160
MUX_BATCH = 8  # clips per ffmpeg run
# 2: 32 training voice variants, a face per utterance; 3: mouths driven by phonemes; 4: mean_face.npy
CORPUS_VERSION = 4


@dataclass
class UttSpec:
    subset: str
    speaker: str
    voice: tuple
    utt: str
    sentences: List[str]
    speed: int
    pitch: int
    word_gap: int
    seed: int


def plan(seed: int, n_trainval: int, n_valid: int, n_pretrain: int, n_test: int):
    rng = random.Random(seed)
    train_voices = [Voice(lang, v) for lang in LANGUAGES for v in TRAIN_VARIANTS]
    test_voices = [Voice(lang, v) for lang in LANGUAGES for v in TEST_VARIANTS]
    specs: List[UttSpec] = []
    counters = {}

    def add(subset, voice, n_sentences):
        counters[voice.speaker] = counters.get(voice.speaker, 0) + 1
        specs.append(
            UttSpec(
                subset,
                voice.speaker,
                (voice.language, voice.variant),
                f"{counters[voice.speaker]:05d}",
                [sample_sentence(rng) for _ in range(n_sentences)],
                rng.randint(140, 190),
                rng.randint(30, 70),
                rng.randint(3, 6),
                rng.randrange(2**31),
            )
        )

    for i in range(n_trainval):
        add("trainval", train_voices[i % len(train_voices)], 1)
    for i in range(n_pretrain):
        add("pretrain", train_voices[(i * 7) % len(train_voices)], rng.choice((2, 3)))
    for i in range(n_test):
        add("test", test_voices[i % len(test_voices)], 1)
    trainval = [s for s in specs if s.subset == "trainval"]
    valid = sorted(f"{s.speaker}/{s.utt}" for s in rng.sample(trainval, n_valid))
    return specs, valid


def lrs3_transcript(words) -> str:
    text = " ".join(w for w, _, _ in words).upper()
    lines = [f"Text:  {text}", "Conf:  4", "", "WORD START END ASDSCORE"]
    lines += [f"{w.upper()} {s:.2f} {e:.2f} 1.0" for w, s, e in words]
    return "\n".join(lines) + "\n"


@dataclass
class Rendered:
    """One utterance, synthesised and rendered, not yet written."""

    spec: UttSpec
    wave: np.ndarray  # float32, 16 kHz
    video: np.ndarray  # (T, FRAME_SIZE, FRAME_SIZE) uint8
    marks: np.ndarray  # (T, 68, 2) float32, NaN = no face
    words: list  # (word, start, end) seconds


def render_utterance(spec: UttSpec) -> Rendered:
    voice = Voice(*spec.voice)
    rng = np.random.default_rng(spec.seed)
    # A face per utterance: LRS3 has thousands of faces, and a video encoder that has seen a few
    # dozen learns those faces instead of lip shapes, failing on every unseen one.
    style = FaceStyle.sample(np.random.default_rng([spec.seed, 1]), FRAME_SIZE)
    pieces, words, t0 = [], [], 0.0
    gap = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    for i, sentence in enumerate(spec.sentences):
        wave = synthesize(sentence, voice, spec.speed, spec.pitch, spec.word_gap)
        words += [(w, s + t0, e + t0) for w, s, e in word_timings(wave, sentence.split())]
        pieces += [wave, gap] if i + 1 < len(spec.sentences) else [wave]
        t0 += (wave.size + (gap.size if i + 1 < len(spec.sentences) else 0)) / SAMPLE_RATE
    wave = np.concatenate(pieces)
    frames = int(np.ceil(wave.size / SAMPLES_PER_FRAME))
    wave = np.pad(wave, (0, frames * SAMPLES_PER_FRAME - wave.size))
    video, marks = render(viseme_track(words, frames), style, rng, FRAME_SIZE)
    marks = marks + rng.normal(0, 0.5, marks.shape).astype(np.float32)  # tracker jitter
    if rng.random() < 0.05:  # the tracker loses the face for a few frames
        start = int(rng.integers(0, max(1, frames - 6)))
        marks[start : start + int(rng.integers(2, 6))] = np.nan
    return Rendered(spec, wave, video, marks, words)


# H.264 + AAC in mp4, as LRS3 ships; one thread per encoder (the corpus runs one job per core).
_ENCODE = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-crf",
    "18",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "64k",
    "-ar",
    str(SAMPLE_RATE),
    "-threads",
    "1",
]


def write_utterances(utts: List[Rendered], out: Path) -> None:
    """The utterances' mp4 files from one ffmpeg run, then their transcripts and landmarks.

    Starting ffmpeg costs more than encoding a short clip; each output has encoders of its own, so
    the files are byte for byte those of one run per clip.
    """
    dirs, parts = [], []
    for u in utts:
        video_dir = out / "corpus" / u.spec.subset / u.spec.speaker
        marks_dir = out / "landmarks" / u.spec.subset / u.spec.speaker
        video_dir.mkdir(parents=True, exist_ok=True)
        marks_dir.mkdir(parents=True, exist_ok=True)
        dirs.append((video_dir, marks_dir))
        # Written next to the final file and renamed: a killed run leaves no half-written mp4.
        parts.append(video_dir / f".{u.spec.utt}.part.mp4")
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = [], []
        for i, (u, part) in enumerate(zip(utts, parts)):
            raw, wav = Path(tmp) / f"{i}.gray", Path(tmp) / f"{i}.wav"
            u.video.tofile(raw)
            soundfile.write(wav, u.wave, SAMPLE_RATE, subtype="PCM_16")
            inputs += [
                "-f",
                "rawvideo",
                "-pix_fmt",
                "gray",
                "-s",
                f"{FRAME_SIZE}x{FRAME_SIZE}",
                "-r",
                "25",
                "-i",
                str(raw),
                "-i",
                str(wav),
            ]
            outputs += ["-map", f"{2 * i}:v", "-map", f"{2 * i + 1}:a", *_ENCODE, str(part)]
        res = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *inputs, *outputs], capture_output=True)
    if res.returncode != 0:
        for part in parts:
            part.unlink(missing_ok=True)
        names = ", ".join(f"{u.spec.speaker}/{u.spec.utt}" for u in utts)
        raise RuntimeError(f"ffmpeg failed on {names}: {res.stderr.decode('utf-8', 'replace').strip()[-500:]}")
    for u, (video_dir, marks_dir), part in zip(utts, dirs, parts):
        part.replace(video_dir / f"{u.spec.utt}.mp4")
        with atomic_write(video_dir / f"{u.spec.utt}.txt") as f:
            f.write(lrs3_transcript(u.words))
        with atomic_write(marks_dir / f"{u.spec.utt}.npy", "wb") as f:
            np.save(f, u.marks.astype(np.float32))


def make_babble(out: Path, seed: int, seconds: float = 60.0, talkers: int = 6) -> None:
    """Sum of ``talkers`` overlapping streams of sentences by the babble voices."""
    rng = random.Random(seed)
    n = int(seconds * SAMPLE_RATE)
    babble = np.zeros(n, np.float64)
    for _ in range(talkers):
        stream, length = [], 0
        while length < n:
            lang, variant = rng.choice(BABBLE_VOICES)
            w = synthesize(sample_sentence(rng), Voice(lang, variant), rng.randint(140, 190), rng.randint(30, 70), 3)
            w = w / (np.sqrt(np.mean(w**2)) + 1e-8)
            stream.append(w)
            length += w.size
        babble += np.roll(np.concatenate(stream)[:n], rng.randrange(n))
    babble *= 0.3 / np.max(np.abs(babble))
    with atomic_write(out / "babble.wav", "wb") as f:
        soundfile.write(f, babble.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")


def _work(args) -> int:
    specs, out = args
    write_utterances([render_utterance(s) for s in specs], out)
    return len(specs)


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n_trainval", type=int, default=1200)
    p.add_argument("--n_valid", type=int, default=100)
    p.add_argument("--n_pretrain", type=int, default=100)
    p.add_argument("--n_test", type=int, default=200)
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args(cmd)
    setup_logging()
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "nj")}
    settings["version"] = CORPUS_VERSION
    stamp = args.out / ".done"
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        logger.info(f"{args.out}: corpus already generated with these settings")
        return
    specs, valid = plan(args.seed, args.n_trainval, args.n_valid, args.n_pretrain, args.n_test)
    args.out.mkdir(parents=True, exist_ok=True)
    chunks = [(specs[i : i + MUX_BATCH], args.out) for i in range(0, len(specs), MUX_BATCH)]
    with (
        multiprocessing.Pool(args.nj) as pool,
        tqdm(total=len(specs), desc="mini corpus", unit="utt", file=sys.stderr, mininterval=5) as bar,
    ):
        for n in pool.imap_unordered(_work, chunks):
            bar.update(n)
    make_babble(args.out, args.seed + 1)
    write_mean_face(args.out / "mean_face.npy")
    with atomic_write(args.out / "valid.id") as f:
        f.writelines(f"{v}\n" for v in valid)
    valid_set = set(valid)
    with atomic_write(args.out / "lm_text.txt") as f:
        f.writelines(
            f"{s}\n"
            for spec in specs
            if spec.subset != "test" and f"{spec.speaker}/{spec.utt}" not in valid_set
            for s in spec.sentences
        )
    with atomic_write(args.out / "plan.json") as f:
        json.dump([asdict(s) for s in specs], f)
    stamp.write_text(digest + "\n")
    logger.info(f"{args.out}: {len(specs)} videos, {len(valid)} validation ids, babble.wav, mean_face.npy")


if __name__ == "__main__":
    main()
