"""Long recordings cut into segments a model can decode, and their transcripts joined.

A segment holds at most ``max_frames`` video frames (25 fps, 640 audio samples each). With audio,
a voice activity rule (``vad``) tells each 40 ms frame whether it is a pause, and how much speech it
holds (``FrameSpeech``):

- ``energy``: a pause is PAUSE_DB below the recording's speech level (the 95th percentile of its
  frames' energy), or nearer its noise floor than that level (``pauses``); the level is the
  frame's energy. It needs nothing more.
- ``silero``: silero-vad's speech probability (its packaged model, run on the CPU); a pause is below
  SILERO_PAUSE. Needs the ``vad`` extra (``pip install silero-vad``).

Whichever rule made them, the cuts fall alike (``cut_points``): each in a pause between a quarter of
the allowed length and the whole of it (``long_pause``: the first of 120 ms or more, or a longer
one soon after it; else the longest), so that segments end where utterances end; the next segment
starts where speech resumes. With no pause there, the cut falls at the 120 ms of least speech;
without audio, at the limit. Once a recording is cut, its rest is cut at its long pauses too, even
when it would fit in one segment. A recording that fits is decoded whole.

How these were chosen (bench case 9: 80 mini test utterances joined, AVSR pack): the model reads
a segment that starts 40 ms before speech worse (7.1 % WER against 5.4 % with each utterance so
shifted), so no pause is kept before speech; the first long pause was, at 2 of 79 boundaries, a
pause between words 0.7 s before the sentence's end; and a rest left whole held two utterances.

The same frames tell silence: a frame below SILENCE_DBFS is a pause at any recording level, and a
segment with fewer than MIN_SPEECH_FRAMES frames above it holds no speech (``holds_speech``):
decoding it would only give the language model's invention.
"""

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from smop.data.inputs import SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS

QUIET_WINDOW = 3  # frames (120 ms) of speech level summed when no frame is a pause
MIN_PAUSE_FRAMES = 3  # a pause (120 ms) long enough to end a segment at (see long_pause)
LOOKAHEAD_FRAMES = 20  # a longer pause this soon (800 ms) after the first long one is taken instead
LEAD_FRAMES = 0  # frames of pause kept before the speech that starts a segment (see cut_points)
PAUSE_DB = 30.0  # a pause frame: this far below the speech level (the 95th percentile of the frames' energy)
NOISE_FLOOR_SHARE = 0.3  # or this near the noise floor (10th percentile), as a share of floor to speech level
MIN_RANGE_DB = 6.0  # ... when the speech level is this far above the floor (else no frame is noise alone)
SILENCE_DBFS = -60.0  # a frame quieter than this (RMS, dB below full scale) holds no speech at any level
MIN_SPEECH_FRAMES = 3  # frames (120 ms) louder than SILENCE_DBFS for a segment to hold speech
VADS = ("energy", "silero")  # the voice activity rules; the first is the default
DEFAULT_VAD = VADS[0]
SILERO_PAUSE = 0.5  # a pause frame: silero-vad's speech probability below this (its own speech threshold)
SILERO_WINDOW = 512  # samples (32 ms at 16 kHz) silero-vad gives one probability for


@dataclass(frozen=True)
class Segment:
    """Frames [start, end) of a recording (25 fps), and its inputs there."""

    start: int
    end: int
    speech: Optional[np.ndarray] = None
    video: Optional[np.ndarray] = None

    @property
    def seconds(self) -> Tuple[float, float]:
        return self.start / VIDEO_FPS, self.end / VIDEO_FPS


def frame_energy(speech: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) energy of each 40 ms frame of ``speech`` (zero-padded to whole frames)."""
    wave = np.zeros(frames * SAMPLES_PER_FRAME, np.float64)
    n = min(wave.size, speech.size)
    wave[:n] = speech[:n]
    return np.square(wave).reshape(frames, SAMPLES_PER_FRAME).sum(axis=1)


def frame_dbfs(energy: np.ndarray) -> np.ndarray:
    """Each frame's RMS level in dB below full scale, from its energy (``frame_energy``)."""
    return 10 * np.log10(energy / SAMPLES_PER_FRAME + 1e-12)


def pauses(energy: np.ndarray) -> np.ndarray:
    """(frames,) True where a frame holds no speech: PAUSE_DB below the recording's speech level
    (its 95th percentile), or nearer its noise floor (10th percentile) than that level, by
    NOISE_FLOOR_SHARE of the way between them when they are MIN_RANGE_DB apart (in babble no frame
    is 30 dB down: the pauses are the frames of noise alone), or below SILENCE_DBFS."""
    db = frame_dbfs(energy)
    floor, level = np.percentile(db, 10), np.percentile(db, 95)
    noise = db < floor + NOISE_FLOOR_SHARE * (level - floor) if level - floor >= MIN_RANGE_DB else False
    return (db < level - PAUSE_DB) | noise | (db < SILENCE_DBFS)


def holds_speech(speech: np.ndarray) -> bool:
    """Whether ``speech`` (16 kHz) has MIN_SPEECH_FRAMES frames louder than silence."""
    energy = frame_energy(speech, max(1, -(-speech.size // SAMPLES_PER_FRAME)))
    return int((frame_dbfs(energy) >= SILENCE_DBFS).sum()) >= MIN_SPEECH_FRAMES


def pause_runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


@dataclass(frozen=True)
class FrameSpeech:
    """What a voice activity rule tells of each 40 ms frame: ``pause`` (bool), and ``level``, how
    much speech it holds (any scale; only its order counts: the cut falls at the least when no
    frame is a pause)."""

    pause: np.ndarray
    level: np.ndarray


def energy_rule(energy: np.ndarray) -> FrameSpeech:
    """The energy rule's view of frames of the given energies (``frame_energy``)."""
    return FrameSpeech(pauses(energy), energy)


def _silero():
    """The silero_vad module. Importing it sets torch's thread count to 1: it is set back."""
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad
    except ImportError:
        raise ImportError(
            "vad 'silero' needs the silero-vad package: pip install 'smop[vad]' (or tools/install.sh --extra vad)"
        ) from None
    finally:
        torch.set_num_threads(threads)
    return silero_vad


def check_vad(vad: str) -> None:
    """ValueError naming the choices for an unknown rule; ImportError naming the extra to install
    when the rule's package is absent. Called before anything is decoded."""
    if vad not in VADS:
        raise ValueError(f"vad must be one of {', '.join(VADS)}, got {vad!r}")
    if vad == "silero":
        _silero()


@functools.lru_cache(maxsize=1)
def silero_model():
    """silero-vad's model, read from the file inside its package (never downloaded), for the CPU."""
    return _silero().load_silero_vad()


def silero_probabilities(speech: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) speech probability of each 40 ms frame of ``speech`` (16 kHz): the lower of the
    two silero-vad 32 ms windows that overlap it. Its probability stays high for about 100 ms after
    speech stops: the 240 ms between the mini corpus's test utterances is a pause of 120 ms or more
    at 59 of 79 boundaries this way, at 17 with the higher (80 utterances, threshold 0.5)."""
    import torch

    wave = np.zeros(frames * SAMPLES_PER_FRAME, np.float32)
    n = min(wave.size, speech.size)
    wave[:n] = speech[:n]
    model = silero_model()
    with torch.no_grad():  # the wave is zero-padded to whole windows
        windows = model.audio_forward(torch.from_numpy(wave)[None], SAMPLE_RATE)[0].numpy()
    first = np.arange(frames) * SAMPLES_PER_FRAME // SILERO_WINDOW
    last = (np.arange(1, frames + 1) * SAMPLES_PER_FRAME - 1) // SILERO_WINDOW
    return np.minimum(windows[first], windows[np.minimum(last, windows.size - 1)])  # a frame spans at most 2 windows


def frame_speech(speech: np.ndarray, frames: int, vad: str = DEFAULT_VAD) -> FrameSpeech:
    """The ``vad`` rule's view of each 40 ms frame of ``speech`` (16 kHz, zero-padded to ``frames``)."""
    check_vad(vad)
    if vad == "silero":
        prob = silero_probabilities(speech, frames)
        return FrameSpeech(prob < SILERO_PAUSE, prob)
    return energy_rule(frame_energy(speech, frames))


def cut_points(frames: int, max_frames: int, speech: Optional[FrameSpeech] = None) -> List[int]:
    """Segment boundaries [0, c1, ..., frames], each segment at most ``max_frames`` long; in the
    pauses of ``speech`` (a rule's view of the frames) when given."""
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if speech is not None:
        pause = speech.pause
        quiet = np.convolve(speech.level, np.ones(QUIET_WINDOW), mode="same")
    cuts = [0]
    while frames - cuts[-1] > max_frames:
        start, limit = cuts[-1], cuts[-1] + max_frames
        lo = start + max(1, max_frames // 4)
        if speech is None:
            cuts.append(limit)
            continue
        runs = pause_runs(pause[lo : limit + 1])
        if runs:  # a long pause (see long_pause), else the longest; the next segment starts where speech resumes
            run = long_pause(runs) or max(runs, key=lambda r: r[1] - r[0])
            cuts.append(min(resume_cut(lo, run), limit))
        else:
            cuts.append(lo + int(np.argmin(quiet[lo : limit + 1])))
    if speech is not None and len(cuts) > 1:
        cuts += rest_cuts(pause, cuts[-1], frames, max(1, max_frames // 4))
    return cuts + [frames]


def resume_cut(lo: int, run: Tuple[int, int]) -> int:
    """The cut in the pause ``run`` (frames from ``lo``): LEAD_FRAMES before speech resumes, never
    before the pause starts."""
    return lo + max(run[0], run[1] - LEAD_FRAMES)


def long_pause(runs: Sequence[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    """The pause to end a segment at, among ``runs`` (in order): the first of MIN_PAUSE_FRAMES or
    more, unless a longer one starts within LOOKAHEAD_FRAMES after it (the longest of those, the
    first on a tie): a pause between sentences outlasts most between words. None without a long one."""
    long_ones = [r for r in runs if r[1] - r[0] >= MIN_PAUSE_FRAMES]
    if not long_ones:
        return None
    near = [r for r in long_ones if r[0] - long_ones[0][0] <= LOOKAHEAD_FRAMES]
    return max(near, key=lambda r: (r[1] - r[0], -r[0]))


def rest_cuts(pause: np.ndarray, start: int, frames: int, shortest: int) -> List[int]:
    """Cuts in the rest of a recording that is being cut, [start, frames), which fits in one
    segment: after each ``shortest`` frames, at the long pause ``long_pause`` picks among those
    that speech follows, as the cuts before it fell, so that the last segment too holds one
    utterance. (Left whole, it held two utterances of the mini corpus's joined test set, which
    the model wrote as one.)"""
    cuts = []
    while frames - start > shortest:
        lo = start + shortest
        run = long_pause([r for r in pause_runs(pause[lo:frames]) if lo + r[1] < frames])
        if run is None:
            break
        start = resume_cut(lo, run)
        cuts.append(start)
    return cuts


def split(
    speech: Optional[np.ndarray],
    video: Optional[np.ndarray],
    max_frames: int,
    min_samples: int = 1,
    vad: str = DEFAULT_VAD,
) -> List[Segment]:
    """A recording's inputs cut into segments of at most ``max_frames`` frames. ``speech`` (16 kHz)
    and ``video`` (25 fps), when both are given, are aligned at 640 samples per frame. The last
    segment of a cut recording, whose last frame may hold a few samples only, is padded with
    silence to whole frames when it has fewer than ``min_samples`` (too few for the audio encoder:
    Whisper's STFT takes 201). ``vad`` names the rule that finds the pauses (``VADS``); it
    looks only at recordings longer than one segment."""
    if speech is None and video is None:
        raise ValueError("nothing to split: no speech and no video")
    check_vad(vad)
    frames = video.shape[0] if video is not None else -(-speech.size // SAMPLES_PER_FRAME)
    looked = speech is not None and frames > max_frames
    cuts = cut_points(frames, max_frames, frame_speech(speech, frames, vad) if looked else None)
    if speech is not None and len(cuts) > 2 and speech.size - cuts[-2] * SAMPLES_PER_FRAME < min_samples:
        speech = np.pad(speech, (0, max(0, frames * SAMPLES_PER_FRAME - speech.size)))
    return [
        Segment(
            a,
            b,
            None if speech is None else speech[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME],
            None if video is None else video[a:b],
        )
        for a, b in zip(cuts[:-1], cuts[1:])
    ]


def join(texts: Sequence[str]) -> str:
    """The recording's transcript: its segments' texts in order, blank ones left out."""
    return " ".join(t.strip() for t in texts if t.strip())
