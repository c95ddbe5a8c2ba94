"""Whisper encoder from Hugging Face transformers (frozen by default)."""

import logging
from typing import Tuple

import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

from smop.data.inputs import SAMPLE_RATE
from smop.encoders.abs_audio_encoder import AbsAudioEncoder
from smop.encoders.whisper_log_mel import WhisperLogMel
from smop.utils.frozen import FreezableMixin, enable_activation_checkpointing, freeze_module, parse_dtype
from smop.utils.masks import check_batch, make_pad_mask
from smop.utils.pretrained import NO_REMOTE_CODE, resolve_pretrained_dir

logger = logging.getLogger(__name__)


class WhisperAudioEncoder(FreezableMixin, AbsAudioEncoder):
    """16 kHz waveform -> Whisper encoder states at 50 Hz.

    Args:
        model_name_or_path: a local directory written by ``save_pretrained`` or a hub id already in
            the HF cache; nothing is ever downloaded.
        freeze: keep the encoder frozen (and in eval mode).
        frozen_dtype: dtype of the frozen weights (float32, bfloat16, float16).
        length_aware: encode only the real frames of each utterance (padded to the longest in the
            batch, with an attention mask), instead of padding every utterance to the model's
            30 s window as Whisper was trained. Much faster for short utterances.
        gradient_checkpointing: recompute each layer's activations in the backward pass instead of
            keeping them (fine-tuning, ``freeze: false``; a frozen encoder keeps none anyway).
    """

    PRETRAINED_ARGS = {"model_name_or_path": "dir"}

    def __init__(
        self,
        model_name_or_path: str,
        freeze: bool = True,
        frozen_dtype: str = "float32",
        length_aware: bool = False,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.freeze = freeze
        self.length_aware = length_aware
        folder = resolve_pretrained_dir(model_name_or_path, "model_name_or_path of the Whisper encoder")
        model, info = WhisperModel.from_pretrained(
            folder,
            **NO_REMOTE_CODE,
            output_loading_info=True,
        )
        missing = [k for k in info["missing_keys"] if k.startswith("encoder.")]
        if missing:
            raise RuntimeError(f"{model_name_or_path}: Whisper encoder weights missing: {missing[:5]}...")
        self.encoder = model.get_encoder()
        del model  # the text decoder is not used
        config: WhisperConfig = self.encoder.config
        try:
            fe = WhisperFeatureExtractor.from_pretrained(folder, **NO_REMOTE_CODE)
        except OSError:
            logger.warning(f"{model_name_or_path}: no preprocessor_config.json; using Whisper's defaults")
            fe = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        if fe.feature_size != config.num_mel_bins:
            raise ValueError(
                f"{model_name_or_path}: feature extractor has {fe.feature_size} mel bins, "
                f"model expects {config.num_mel_bins}"
            )
        self.log_mel = WhisperLogMel(fe.mel_filters, n_fft=fe.n_fft, hop_length=fe.hop_length)
        conv_stride = self.encoder.conv1.stride[0] * self.encoder.conv2.stride[0]
        self.max_frames = config.max_source_positions * conv_stride  # mel frames in the window
        self.window_samples = self.max_frames * fe.hop_length
        self.frame_shift = fe.hop_length * conv_stride  # samples per output frame
        self.frozen_dtype = parse_dtype(frozen_dtype) if freeze else None
        if freeze:
            freeze_module(self.encoder)
        if gradient_checkpointing:
            if freeze:
                logger.warning(
                    "whisper: gradient_checkpointing has no effect on a frozen encoder (it runs without gradients)"
                )
            enable_activation_checkpointing(self.encoder)
        self.to(torch.float32)  # applies frozen_dtype to the frozen weights

    def output_size(self) -> int:
        return self.encoder.config.d_model

    def max_input_samples(self) -> int:
        return self.window_samples  # the 30 s window of Whisper's positional embeddings

    def min_input_samples(self) -> int:
        return self.log_mel.n_fft // 2 + 1  # the STFT's reflection padding needs more than half a window

    def output_lengths(self, speech_lengths: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel.num_frames(speech_lengths)
        return torch.div(mel + 1, 2, rounding_mode="floor")

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, S) waveform, (B,) samples -> (B, T, D) states, (B,) frames."""
        check_batch("whisper", speech, speech_lengths)
        too_long = speech_lengths > self.window_samples
        if bool(too_long.any()):
            raise ValueError(
                f"Whisper encodes at most {self.window_samples} samples "
                f"({self.window_samples / SAMPLE_RATE:.1f} s); got {int(speech_lengths.max())}. "
                "Cut long utterances in data preparation; for long recordings, Speech2Text.transcribe and "
                "smop-transcribe cut them into segments."
            )
        if bool((speech_lengths < self.min_input_samples()).any()):
            raise ValueError(
                f"Whisper encodes at least {self.min_input_samples()} samples "
                f"({1000 * self.min_input_samples() / SAMPLE_RATE:.1f} ms); got {int(speech_lengths.min())}"
            )
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            if self.length_aware:
                out = self._forward_length_aware(speech, speech_lengths)
            else:
                out = self._forward_full_window(speech, speech_lengths)
        lengths = self.output_lengths(speech_lengths)
        return out[:, : int(lengths.max())].float(), lengths

    def _dtype(self) -> torch.dtype:
        return self.encoder.conv1.weight.dtype

    def _forward_full_window(self, speech, speech_lengths):
        mels = self.log_mel(speech, speech_lengths, pad_to=self.window_samples)
        feats = torch.stack(mels).to(self._dtype())
        return self.encoder(input_features=feats).last_hidden_state

    def _forward_length_aware(self, speech, speech_lengths):
        enc = self.encoder
        mels = self.log_mel(speech, speech_lengths)
        n_mel = torch.tensor([m.shape[1] for m in mels], device=speech.device)
        feats = torch.nn.utils.rnn.pad_sequence([m.T for m in mels], batch_first=True)  # (B, F, n_mels)
        feats = feats.transpose(1, 2).to(self._dtype())
        # Zero the padded frames after each conv so that the next conv sees what zero padding of a
        # lone utterance would give.
        x = torch.nn.functional.gelu(enc.conv1(feats))
        x = x.masked_fill(make_pad_mask(n_mel, x.shape[2]).unsqueeze(1), 0.0)
        x = torch.nn.functional.gelu(enc.conv2(x)).transpose(1, 2)  # (B, T, D)
        lengths = torch.div(n_mel + 1, 2, rounding_mode="floor")
        x = x + enc.embed_positions.weight[: x.shape[1]]
        pad = make_pad_mask(lengths, x.shape[1])
        mask = torch.zeros(pad.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill(pad, torch.finfo(x.dtype).min)[:, None, None, :]
        for layer in enc.layers:
            x = layer(x, mask)
        return enc.layer_norm(x)
