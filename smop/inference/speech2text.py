"""The Python API: ``Speech2Text.from_pretrained(pack)(speech=..., video=...)``.

ESPnet's ``Speech2Text`` convention for smop models: one call decodes one utterance or a batch, with
the decoding settings the model was packed with (``decode.yaml``) unless overridden. As in ESPnet,
``smop.bin.avsr_inference`` decodes through it too (``recognize_batch``): both give the same
hypotheses for the same input. ``transcribe`` takes recordings of any length: it cuts them into
segments the model can decode (``smop.inference.segments``) and joins their transcripts.
"""

import copy
import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from smop.data.alignment import av_tolerance
from smop.data.inputs import INPUTS, MODALITIES, SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS
from smop.experiment import Usage, add_usage, usage_counts
from smop.inference import segments
from smop.inference.settings import DecodeSettings, decoding_batch
from smop.projectors.abs_projector import ProjectorOutput
from smop.utils.frozen import parse_dtype

logger = logging.getLogger(__name__)

Array = Union[np.ndarray, torch.Tensor]
MAX_SEGMENT_SECONDS = 30.0  # Whisper's window; the longest segment transcribe() decodes by default


@dataclass(frozen=True)
class Hypothesis:
    """The 1-best transcript, its log-probability score, and the inputs decoded blank because the
    utterance lacked them (``"speech"``, ``"video"``; blanked as modality dropout blanks them in training)."""

    text: str
    score: float
    blanked: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """A recording's transcript: its segments' texts joined and their scores (log-probabilities)
    summed; ``segments`` holds (start s, end s, Hypothesis) of each, in order; ``notes`` what was
    not decoded (segments without speech)."""

    text: str
    score: float
    blanked: Tuple[str, ...]
    segments: Tuple[Tuple[float, float, Hypothesis], ...]
    notes: Tuple[str, ...] = ()


def _numpy(x: Optional[Array]) -> Optional[np.ndarray]:
    return None if x is None else np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x)


def _check_aligned(uid: str, speech: np.ndarray, video: np.ndarray) -> None:
    heard, seen = speech.shape[0] / SAMPLE_RATE, video.shape[0] / VIDEO_FPS
    if abs(heard - seen) > av_tolerance(seen):
        raise ValueError(
            f"{uid}: speech lasts {heard:.2f} s but video {seen:.2f} s; a recording's speech and video must "
            "be aligned (640 samples a frame), as smop.inference.media_inputs.read_inputs makes them"
        )


def check_device(device: str) -> None:
    """ValueError, before anything loads, for a device this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r}: not a torch device ({e}); use cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this machine has no CUDA GPU that torch can use; use cpu")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})")


class Speech2Text:
    """Decode speech and/or mouth crops with a trained smop model.

        speech2text = Speech2Text.from_pretrained("exp/train_dedr/pack", device="cuda", beam_size=15)
        hyp = speech2text(speech=wave, video=mouths)      # one utterance -> Hypothesis
        hyps = speech2text(speech=[w1, w2], video=[m1, m2])  # a batch -> [Hypothesis, ...]
        transcript = speech2text.transcribe(speech=wave, video=mouths)  # any length -> Transcript

    ``speech``: 16 kHz mono float waveform (S,). ``video``: uint8 grey mouth crops (T, H, W) at
    25 fps, cropped like the model's training data (a pack's ``mouth_crop.yaml``). Inputs the
    model does not use are ignored. An audio-visual model given only one of them decodes with the
    other blanked, as modality dropout blanks it in training; the hypothesis names what was blanked.
    """

    def __init__(
        self,
        model,
        train_args,
        settings: DecodeSettings = DecodeSettings(),
        device: str = "cpu",
        mouth_crop=None,
        vad: str = segments.DEFAULT_VAD,
    ):
        from smop.tasks.avsr import SmopAVSRTask

        segments.check_vad(vad)  # before the model loads: a missing package is said at once
        self.vad = vad
        self.settings = settings
        self.device = device
        self.mouth_crop = mouth_crop
        self.train_args = train_args
        self.dtype = parse_dtype(settings.dtype, "dtype")
        # The grid cell to decode (an elastic model's modality and rates), refused before anything decodes.
        self.cell_modality, self.rates = model.decoding_choice(**settings.cell())
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.preprocess = SmopAVSRTask.build_preprocess_fn(train_args, False)
        self.collate = SmopAVSRTask.build_collate_fn(train_args, False)

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str, device: str = "cpu", quantization=None, vad: str = segments.DEFAULT_VAD, **settings
    ) -> "Speech2Text":
        """A packed model from a local folder or a hub id in the local Hugging Face cache (never
        downloaded). ``settings`` override the pack's decoding settings: batch_size, beam_size,
        max_new_tokens_per_second, max_new_tokens_min, early_stopping, dtype, and an elastic model's
        modality, audio_rate, video_rate (a ValueError lists those it was trained for). ``quantization``
        decodes with the LLM quantized otherwise than in training, with a logged note: a
        ``decoder_conf.quantization`` mapping (``{"bits": 4}``), or ``"none"``; None: as trained.
        ``vad``: the rule that finds the pauses ``transcribe`` cuts long recordings at
        (``smop.inference.segments.VADS``)."""
        from smop.inference.pack_reader import read_pack

        check_device(device)
        segments.check_vad(vad)
        return cls.from_pack(read_pack(name_or_dir), device, quantization, vad, **settings)

    @classmethod
    def from_pack(
        cls, packed, device: str = "cpu", quantization=None, vad: str = segments.DEFAULT_VAD, **settings
    ) -> "Speech2Text":
        """A pack already read (``smop.inference.pack_reader.PackedModel``); as :meth:`from_pretrained`."""
        check_device(device)
        segments.check_vad(vad)
        with packed.reading_config():
            model, args = packed.build_model(device, quantization)
            return cls(model, args, packed.settings.replace(**settings), device, packed.mouth_crop, vad)

    @classmethod
    def from_files(
        cls,
        train_config: Optional[str],
        model_file: Optional[str],
        device: str = "cpu",
        quantization=None,
        vad: str = segments.DEFAULT_VAD,
        **settings,
    ) -> "Speech2Text":
        """An experiment's model: its training config and a checkpoint (as ESPnet's Speech2Text takes
        ``asr_train_config`` and ``asr_model_file``); ``settings`` change DecodeSettings' defaults;
        ``quantization`` and ``vad`` as in :meth:`from_pretrained`."""
        from smop.tasks.avsr import SmopAVSRTask

        check_device(device)
        segments.check_vad(vad)
        model, args = SmopAVSRTask.build_model_from_file(train_config, model_file, device, quantization)
        return cls(model, args, DecodeSettings().replace(**settings), device, vad=vad)

    @property
    def modality(self) -> str:
        """The modality decoded: the model's, or the one of an elastic model's that the settings choose."""
        return self.cell_modality

    def at(
        self, modality: Optional[str] = None, audio_rate: Optional[int] = None, video_rate: Optional[int] = None
    ) -> "Speech2Text":
        """This model decoding another cell of its grid (None keeps the setting as it is): a copy that
        shares the loaded model, so nothing is reloaded; GridError (a ValueError) for a cell the model
        was not trained for."""
        other = copy.copy(self)
        other.settings = self.settings.replace(modality=modality, audio_rate=audio_rate, video_rate=video_rate)
        other.cell_modality, other.rates = self.model.decoding_choice(**other.settings.cell())
        return other

    def uses(self, name: str) -> bool:
        """Whether the model, decoding ``modality``, reads ``"speech"`` or ``"video"``."""
        return name in {INPUTS[m].name for m in MODALITIES[self.modality]}

    def segment_frames(self, max_seconds: Optional[float] = None) -> int:
        """The longest segment (25 fps frames) ``transcribe`` cuts a recording into: ``max_seconds``
        (default 30 s), never more than the audio encoder takes (Whisper: 30 s). A recording that
        fits is decoded whole, as the recipe decodes an utterance."""
        seconds = MAX_SEGMENT_SECONDS if max_seconds is None else max_seconds
        if seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        limit = max(1, int(seconds * VIDEO_FPS))
        encoder = self.model.audio_encoder
        if self.uses("speech") and encoder is not None and encoder.max_input_samples() is not None:
            limit = min(limit, encoder.max_input_samples() // SAMPLES_PER_FRAME)
        return limit

    # -------------------------------------------------------------------------------- inputs
    def _utterance(
        self, uid: str, speech: Optional[Array], video: Optional[Array]
    ) -> Tuple[Dict[str, np.ndarray], Tuple[str, ...]]:
        """One utterance's model inputs as validation preprocesses them, and what was blanked."""
        given = {}
        if speech is not None and self.uses("speech"):
            given["speech"] = self._checked_speech(uid, speech).astype(np.float32)
        if video is not None and self.uses("video"):
            frames = _numpy(video)
            if frames.ndim != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
                raise ValueError(
                    f"{uid}: video must be uint8 grey mouth crops (T>0, H, W) at 25 fps, "
                    f"got {frames.dtype} {frames.shape}"
                )
            side = self.mouth_crop.side if self.mouth_crop is not None else None
            if side is not None and frames.shape[1:] != (side, side):
                raise ValueError(
                    f"{uid}: mouth crops of {frames.shape[2]}x{frames.shape[1]}, but this model was trained on "
                    f"crops of {self.mouth_crop.describe()}: crop them so (smop.inference.media_inputs.read_inputs)"
                )
            given["video"] = frames
        if "speech" in given and "video" in given:
            _check_aligned(uid, given["speech"], given["video"])
        needed = [n for n in ("speech", "video") if self.uses(n)]
        missing = tuple(n for n in needed if n not in given)
        if len(missing) == len(needed):
            raise ValueError(f"{uid}: this {self.modality} model needs {' and/or '.join(needed)}")
        # A blanked input keeps the other's duration: silence, or frames that normalise to 0.
        if "video" in missing:
            side = self.preprocess.crop_size
            given["video"] = np.zeros((max(1, round(given["speech"].size / SAMPLES_PER_FRAME)), side, side), np.uint8)
        if "speech" in missing:
            given["speech"] = np.zeros(given["video"].shape[0] * SAMPLES_PER_FRAME, np.float32)
        data = self.preprocess(uid, given)
        for name in missing:
            data[name] = np.zeros_like(data[name])
        return {k: v.astype(np.float32 if v.dtype.kind == "f" else np.int64) for k, v in data.items()}, missing

    def _checked_speech(self, uid: str, speech: Array) -> np.ndarray:
        """``speech`` as an array; ValueError naming ``uid`` for what the audio encoder cannot take."""
        wave = _numpy(speech)
        if wave.ndim != 1 or wave.size == 0 or wave.dtype.kind != "f":
            raise ValueError(
                f"{uid}: speech must be a non-empty mono float waveform (S,) at 16 kHz, got {wave.dtype} {wave.shape}"
            )
        shortest = self.model.audio_encoder.min_input_samples()
        if wave.size < shortest:
            raise ValueError(
                f"{uid}: {wave.size} samples of speech ({1000 * wave.size / SAMPLE_RATE:.1f} ms); the audio "
                f"encoder takes at least {shortest} ({1000 * shortest / SAMPLE_RATE:.1f} ms)"
            )
        if not np.isfinite(wave).all():
            raise ValueError(f"{uid}: speech holds NaN or infinite samples")
        return wave

    def _length(self, data: Dict[str, np.ndarray]) -> int:
        """Length for batching, measured as avsr_inference measures it (25 Hz frames)."""
        return data["speech"].shape[0] // SAMPLES_PER_FRAME if self.uses("speech") else data["video"].shape[0]

    # -------------------------------------------------------------------------------- decoding
    def __call__(
        self,
        speech: Union[None, Array, Sequence[Optional[Array]]] = None,
        video: Union[None, Array, Sequence[Optional[Array]]] = None,
    ) -> Union[Hypothesis, List[Hypothesis]]:
        batched = [isinstance(x, (list, tuple)) for x in (speech, video) if x is not None]
        if not batched:
            raise ValueError("give speech=, video= or both")
        if len(set(batched)) > 1:
            raise ValueError("give speech and video both as one utterance each, or both as lists")
        if not batched[0]:
            return self.decode([speech], [video])[0]
        n = {len(x) for x in (speech, video) if x is not None}
        if len(n) > 1:
            raise ValueError(f"speech and video lists differ in length ({len(speech)} and {len(video)})")
        count = n.pop()
        return self.decode(
            list(speech) if speech is not None else [None] * count, list(video) if video is not None else [None] * count
        )

    def transcribe(
        self, speech: Optional[Array] = None, video: Optional[Array] = None, max_seconds: Optional[float] = None
    ) -> Transcript:
        """One recording of any length (inputs as for a call), cut into segments of at most
        ``segment_frames(max_seconds)``, at pauses when there is audio (found by the ``vad`` rule)."""
        return self.transcribe_all([speech], [video], max_seconds)[0]

    def transcribe_all(
        self,
        speech: List[Optional[Array]],
        video: List[Optional[Array]],
        max_seconds: Optional[float] = None,
        ids: Optional[List[str]] = None,
        usage: Optional[Usage] = None,
    ) -> List[Transcript]:
        """Recordings of any length; the segments of all of them are decoded together, in batches.
        A segment that holds no speech (``segments.holds_speech``) and no video to lip-read is not
        decoded: its text is empty, and the recording's notes say so. ``usage``: see :meth:`decode`."""
        ids = ids or [f"recording {i}" for i in range(len(speech))]
        limit = self.segment_frames(max_seconds)
        pieces = []  # (recording, segment, segment id)
        silent: List[List[str]] = [[] for _ in ids]
        for i, (uid, s, v) in enumerate(zip(ids, speech, video)):
            s = self._checked_speech(uid, s) if s is not None and self.uses("speech") else _numpy(s)
            v = _numpy(v)
            if s is not None and v is not None:  # segments cut both at the same frames
                _check_aligned(uid, s, v)
            shortest = self.model.audio_encoder.min_input_samples() if self.uses("speech") else 1
            cut = segments.split(s, v, limit, shortest, self.vad)
            for seg in cut:
                start, end = seg.seconds
                pieces.append((i, seg, uid if len(cut) == 1 else f"{uid} [{start:.2f}-{end:.2f} s]"))
        heard = [self._worth_decoding(seg) for _, seg, _ in pieces]
        chosen = [p for p, keep in zip(pieces, heard) if keep]
        hyps = iter(
            self.decode(
                [p[1].speech for p in chosen], [p[1].video for p in chosen], ids=[p[2] for p in chosen], usage=usage
            )
        )
        parts: List[List[Tuple[float, float, Hypothesis]]] = [[] for _ in ids]
        for (i, seg, sid), keep in zip(pieces, heard):
            if keep:
                parts[i].append((*seg.seconds, next(hyps)))
            else:
                lacked = ("video",) if self.uses("video") else ()  # no video: else the segment is decoded
                parts[i].append((*seg.seconds, Hypothesis("", 0.0, lacked)))
                silent[i].append(sid)
        return [
            Transcript(
                segments.join([h.text for _, _, h in p]),
                float(sum(h.score for _, _, h in p)),
                tuple(n for n in ("speech", "video") if all(n in h.blanked for _, _, h in p)),
                tuple(p),
                tuple(f"{sid}: no speech (silent audio): not decoded" for sid in quiet),
            )
            for p, quiet in zip(parts, silent)
        ]

    def _worth_decoding(self, seg: segments.Segment) -> bool:
        """False for a segment with silent audio and no video the model could lip-read."""
        if not self.uses("speech") or seg.speech is None:
            return True
        if seg.video is not None and self.uses("video"):
            return True
        return segments.holds_speech(seg.speech)

    @torch.no_grad()
    def recognize_batch(
        self, keys: Sequence[str], batch: Mapping[str, torch.Tensor]
    ) -> Tuple[List[Tuple[str, float]], ProjectorOutput]:
        """One batch as the task's collate makes it (keys and tensors): the (text, score) of each
        utterance and the projector's output (routing counts). The batch goes to the device with
        its floats in the decoding dtype; transcripts in it are not used."""
        inputs = {k: v for k, v in batch.items() if not k.startswith("text")}
        return self.model.recognize(
            **decoding_batch(inputs, self.device, self.dtype), **self.settings.search(), utt_id=list(keys)
        )

    @torch.no_grad()
    def decode(
        self,
        speech: List[Optional[Array]],
        video: List[Optional[Array]],
        ids: Optional[List[str]] = None,
        usage: Optional[Usage] = None,
    ) -> List[Hypothesis]:
        """Hypotheses in input order; decoded longest first in batches of ``settings.batch_size``
        (the order of avsr_inference, whose batches then hold the same utterances). A sparse
        projector's routing counts of these utterances are added into ``usage`` when given
        (modality -> ``top<r>`` -> tokens per expert, as in avsr_inference's expert_usage.json)."""
        ids = ids or [f"utterance {i}" for i in range(len(speech))]
        items = [self._utterance(uid, s, v) for uid, s, v in zip(ids, speech, video)]
        order = sorted(range(len(items)), key=lambda i: (-self._length(items[i][0]), i))
        out: List[Optional[Hypothesis]] = [None] * len(items)
        size = self.settings.batch_size
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            hyps, proj = self.recognize_batch(*self.collate([(ids[i], items[i][0]) for i in chosen]))
            for i, (text, score) in zip(chosen, hyps):
                out[i] = Hypothesis(text, score, items[i][1])
            if usage is not None:
                add_usage(usage, usage_counts(proj.usage))
        return out
