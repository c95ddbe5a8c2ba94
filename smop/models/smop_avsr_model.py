"""Llama-SMoP: frozen encoders -> compression -> (sparse) projector -> LLM with LoRA."""

import logging
import math
from typing import Dict, List, Optional, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from smop.compressors.abs_compressor import AbsCompressor
from smop.data.inputs import INPUTS, MODALITIES, SAMPLE_RATE, VIDEO_FPS
from smop.decoders.abs_decoder import AbsDecoder
from smop.encoders.abs_audio_encoder import AbsAudioEncoder
from smop.encoders.abs_video_encoder import AbsVideoEncoder
from smop.projectors.abs_projector import AbsProjector, ProjectorOutput

logger = logging.getLogger(__name__)


def _parameter_counts(module: torch.nn.Module) -> Dict[str, int]:
    return {
        "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in module.parameters()),
    }


class SmopAVSRModel(AbsESPnetModel):
    """ESPnet model contract: ``forward`` returns (loss, stats, weight).

    ``state_dict()`` holds only what training changes (trainable parameters, and buffers of
    modules that have any); the frozen pretrained weights are rebuilt from their sources by the
    task's ``build_model``, so checkpoints stay small.

    Args:
        check_finite: raise with the utterance ids when features or the loss are NaN/inf.
        sample_rate, video_fps: input rates, to scale the decoding length budget by duration.
    """

    def __init__(
        self,
        modality: str,
        audio_encoder: Optional[AbsAudioEncoder],
        video_encoder: Optional[AbsVideoEncoder],
        audio_compressor: Optional[AbsCompressor],
        video_compressor: Optional[AbsCompressor],
        projector: AbsProjector,
        decoder: AbsDecoder,
        check_finite: bool = True,
        sample_rate: int = SAMPLE_RATE,
        video_fps: float = VIDEO_FPS,
    ):
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {sorted(MODALITIES)}, got {modality!r}")
        self.modality = modality
        self.modalities = MODALITIES[modality]
        self.audio_encoder = audio_encoder
        self.video_encoder = video_encoder
        self.audio_compressor = audio_compressor
        self.video_compressor = video_compressor
        self.projector = projector
        self.decoder = decoder
        self.check_finite = check_finite
        self.sample_rate = sample_rate
        self.video_fps = video_fps
        for m in self.modalities:
            if getattr(self, f"{m}_encoder") is None or getattr(self, f"{m}_compressor") is None:
                raise ValueError(f"modality {modality} needs a {m} encoder and compressor")

    # ------------------------------------------------------------------------------- encoding
    def _inputs(self, speech, speech_lengths, video, video_lengths) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        given = {"audio": (speech, speech_lengths), "video": (video, video_lengths)}
        for m in self.modalities:
            if given[m][0] is None:
                raise ValueError(
                    f"modality={self.modality} needs '{INPUTS[m].name}' data; add it to "
                    f"--*_data_path_and_name_and_type (e.g. {','.join(INPUTS[m].triple('data/train'))})"
                )
        return {m: given[m] for m in self.modalities}

    def encode(
        self,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        utt_id: Optional[List[str]] = None,
    ) -> Tuple[Dict[str, Tuple[torch.Tensor, torch.Tensor]], ProjectorOutput]:
        """Raw inputs -> projected LLM embeddings per modality (+ router losses and stats)."""
        feats = {}
        # The encoders give float32; the projector runs in its own dtype (float32 in training, the
        # decoding dtype when the model is cast, e.g. avsr_inference --dtype bfloat16).
        dtype = next(self.projector.parameters()).dtype
        for m, (x, lengths) in self._inputs(speech, speech_lengths, video, video_lengths).items():
            h, h_lengths = getattr(self, f"{m}_encoder")(x, lengths)
            if self.check_finite:
                self._assert_finite(h, f"{m} encoder output", utt_id)
            c, c_lengths = getattr(self, f"{m}_compressor")(h, h_lengths)
            feats[m] = (c.to(dtype), c_lengths)
        out = self.projector(feats)
        embeds = {m: (out.embeds[m], feats[m][1]) for m in feats}
        return embeds, out

    @staticmethod
    def _assert_finite(x: torch.Tensor, what: str, utt_id: Optional[List[str]]) -> None:
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
        if bool(bad.any()):
            ids = [utt_id[i] for i in bad.nonzero().flatten().tolist()] if utt_id else bad.nonzero().flatten().tolist()
            raise FloatingPointError(f"non-finite values in the {what} for utterances {ids}")

    # ------------------------------------------------------------------------------- training
    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        utt_id: Optional[List[str]] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """(B, L) transcript ids (-1 padded) + (B, S) waveform and/or (B, T, H, W) frames."""
        batch_size = text.shape[0]
        embeds, proj = self.encode(speech, speech_lengths, video, video_lengths, utt_id)
        ce, dec_stats = self.decoder(embeds, text, text_lengths)
        loss = ce + proj.aux_loss
        if self.check_finite and not bool(torch.isfinite(loss)):
            raise FloatingPointError(
                f"non-finite loss (ce={float(ce.detach())}, aux={float(proj.aux_loss.detach())}) in the batch {utt_id}"
            )
        stats = dict(loss=loss.detach(), loss_ce=ce.detach(), acc=dec_stats["acc"], **proj.stats)
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def collect_feats(self, text, text_lengths, **kwargs) -> Dict[str, torch.Tensor]:
        # Shape files are written by the recipe; there are no features to normalise.
        return {}

    # ------------------------------------------------------------------------------- decoding
    def max_new_tokens(self, speech_lengths, video_lengths, per_second: float, minimum: int) -> List[int]:
        seconds = (
            speech_lengths.float() / self.sample_rate
            if speech_lengths is not None
            else video_lengths.float() / self.video_fps
        )
        return [minimum + math.ceil(per_second * s) for s in seconds.tolist()]

    @torch.no_grad()
    def recognize(
        self,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        *,
        beam_size: int,
        max_new_tokens_per_second: float,
        max_new_tokens_min: int,
        early_stopping: bool,
        utt_id: Optional[List[str]] = None,
    ) -> Tuple[List[Tuple[str, float]], ProjectorOutput]:
        """Transcripts and log-probabilities, and the projector's output (routing counts). The
        search settings have no defaults here: smop.inference.settings.DecodeSettings holds them
        (``**settings.search()``)."""
        embeds, proj = self.encode(speech, speech_lengths, video, video_lengths, utt_id)
        budget = self.max_new_tokens(
            speech_lengths if "audio" in self.modalities else None,
            video_lengths,
            max_new_tokens_per_second,
            max_new_tokens_min,
        )
        return self.decoder.generate(embeds, budget, beam_size, early_stopping=early_stopping), proj

    # --------------------------------------------------------------------------------- summary
    def summary(self) -> Dict[str, object]:
        """What the model is as built, as plain data for reports (RESULTS.md, model cards): the
        modality, each part's class and parameter counts, and the summaries of the parts whose
        settings shape the model (compressors, projector, decoder)."""
        parts = {
            name: {"class": type(module).__name__, **_parameter_counts(module)}
            for name, module in self.named_children()
        }
        compressors = {m: getattr(self, f"{m}_compressor").summary() for m in self.modalities}
        return {
            "modality": self.modality,
            "parts": parts,
            "compressors": compressors,
            "projector": self.projector.summary(),
            "decoder": self.decoder.summary(),
            **_parameter_counts(self),
        }

    # ------------------------------------------------------------------- trainable-only state
    def _kept_keys(self) -> set:
        """Trainable parameters, plus buffers of modules that have trainable parameters."""
        keep = {n for n, p in self.named_parameters() if p.requires_grad}
        for mod_name, mod in self.named_modules():
            if any(p.requires_grad for p in mod.parameters(recurse=False)):
                for b_name, _ in mod.named_buffers(recurse=False):
                    if b_name not in mod._non_persistent_buffers_set:
                        keep.add(f"{mod_name}.{b_name}" if mod_name else b_name)
        return keep

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        full = super().state_dict(prefix="", keep_vars=keep_vars)
        kept = self._kept_keys()
        if destination is None:
            destination = type(full)()
        for k, v in full.items():
            if k in kept:
                destination[prefix + k] = v
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        kept = self._kept_keys()
        every = set(super().state_dict().keys())
        unexpected = sorted(set(state_dict) - every)
        frozen = sorted((set(state_dict) & every) - kept)
        missing = sorted(kept - set(state_dict))
        if unexpected or (strict and missing):
            raise RuntimeError(
                f"checkpoint does not match the model: missing trainable {missing[:8]}, unexpected {unexpected[:8]}"
            )
        if missing:
            logger.warning(f"checkpoint lacks trainable entries (kept as built): {missing[:8]}")
        if frozen:
            logger.info(f"checkpoint overrides {len(frozen)} frozen entries (e.g. {frozen[:3]})")
        return super().load_state_dict(state_dict, strict=False, assign=assign)
