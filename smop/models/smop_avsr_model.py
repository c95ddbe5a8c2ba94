"""Llama-SMoP: frozen encoders -> compression -> (sparse) projector -> LLM with LoRA."""

import logging
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from smop.compressors.abs_compressor import AbsCompressor
from smop.data.inputs import INPUTS, MODALITIES, SAMPLE_RATE, VIDEO_FPS
from smop.decoders.abs_decoder import AbsDecoder
from smop.encoders.abs_audio_encoder import AbsAudioEncoder
from smop.encoders.abs_video_encoder import AbsVideoEncoder
from smop.models import elastic
from smop.projectors.abs_projector import AbsProjector, ProjectorOutput
from smop.projectors.per_rate_projector import PerRateProjector

logger = logging.getLogger(__name__)
RATE_PAIR_TRAINING = ("all", "sample")


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

    An elastic model (issue 21) trains one checkpoint for several rate pairs and modalities:
    compressors with several ``rates`` give the grid of rate pairs (smop.models.elastic), and
    ``modalities`` the tasks. The encoders run once per step; compression, projection and the LLM
    once per rate pair trained in the step. With one rate per modality and one modality, the model
    trains and decodes exactly as a fixed-rate one.

    Args:
        check_finite: raise with the utterance ids when features or the loss are NaN/inf.
        sample_rate, video_fps: input rates, to scale the decoding length budget by duration.
        modalities: the tasks trained (audio, video, audiovisual), each read from the inputs of
            ``modality``; in training each utterance is one of them, drawn with
            ``modality_weights`` (modality -> weight, default equal), its other modality's tokens
            left out as in the ASR or VSR model. Default: ``[modality]``.
        rate_pair_training: ``all``: each step trains every rate pair, the loss the weighted mean
            of theirs (Omni-AVSR's way); ``sample``: one pair per step, drawn with the weights.
        rate_pair_weights: rate pair name (``a4_v2``) -> weight, default equal.
        projector_per_rate: a projector per rate pair (the task builds a PerRateProjector) instead
            of one whose routers and experts every rate shares.
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
        modalities: Optional[Sequence[str]] = None,
        modality_weights: Optional[Mapping[str, float]] = None,
        rate_pair_training: str = "all",
        rate_pair_weights: Optional[Mapping[str, float]] = None,
        projector_per_rate: bool = False,
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
        # The grid: the tasks and rate pairs trained, and their weights.
        self.tasks = elastic.check_tasks(modality, modalities)
        self.task_weights = elastic.modality_weights(self.tasks, modality_weights)
        self.rates = {m: list(getattr(self, f"{m}_compressor").rates) for m in self.modalities}
        self.rate_pairs = elastic.rate_grid(self.rates)
        self.pair_weights = elastic.pair_weights(self.rate_pairs, rate_pair_weights)
        if rate_pair_training not in RATE_PAIR_TRAINING:
            raise ValueError(f"model_conf.rate_pair_training: one of {RATE_PAIR_TRAINING}, got {rate_pair_training!r}")
        self.rate_pair_training = rate_pair_training
        if projector_per_rate != isinstance(projector, PerRateProjector):
            raise ValueError("projector_per_rate: true needs a PerRateProjector (the task builds it), and only then")
        self.projector_per_rate = projector_per_rate

    # ------------------------------------------------------------------------------- encoding
    def _inputs(
        self, speech, speech_lengths, video, video_lengths, modality: Optional[str] = None
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        given = {"audio": (speech, speech_lengths), "video": (video, video_lengths)}
        modality = modality or self.modality
        for m in MODALITIES[modality]:
            if given[m][0] is None:
                raise ValueError(
                    f"modality={modality} needs '{INPUTS[m].name}' data; add it to "
                    f"--*_data_path_and_name_and_type (e.g. {','.join(INPUTS[m].triple('data/train'))})"
                )
        return {m: given[m] for m in MODALITIES[modality]}

    def encode(
        self,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        video: Optional[torch.Tensor] = None,
        video_lengths: Optional[torch.Tensor] = None,
        utt_id: Optional[List[str]] = None,
        rates: Optional[elastic.RatePair] = None,
        modality: Optional[str] = None,
    ) -> Tuple[Dict[str, Tuple[torch.Tensor, torch.Tensor]], ProjectorOutput]:
        """Raw inputs -> projected LLM embeddings per modality (+ router losses and stats), at the
        rates ``rates`` gives (each input's first for the others) and reading the inputs of
        ``modality`` (None: all). An ASR or VSR cell of a model with a projector per rate pair is
        projected by the pair of its rate and the other input's first."""
        hidden = self.encode_inputs(speech, speech_lengths, video, video_lengths, utt_id, modality)
        return self.project(hidden, {**self.rate_pairs[0], **(rates or {})})

    def encode_inputs(
        self, speech, speech_lengths, video, video_lengths, utt_id=None, modality: Optional[str] = None
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """The encoders' outputs of the inputs ``modality`` reads (None: the model's modality)."""
        hidden = {}
        for m, (x, lengths) in self._inputs(speech, speech_lengths, video, video_lengths, modality).items():
            h, h_lengths = getattr(self, f"{m}_encoder")(x, lengths)
            if self.check_finite:
                self._assert_finite(h, f"{m} encoder output", utt_id)
            hidden[m] = (h, h_lengths)
        return hidden

    def projector_for(self, rates: elastic.RatePair) -> AbsProjector:
        return self.projector.select(elastic.pair_name(rates)) if self.projector_per_rate else self.projector

    def project(
        self,
        hidden: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
        rates: elastic.RatePair,
        present: Optional[Dict[str, torch.Tensor]] = None,
    ) -> Tuple[Dict[str, Tuple[torch.Tensor, torch.Tensor]], ProjectorOutput]:
        """Encoder outputs -> LLM embeddings at the rate pair ``rates``. ``present``: modality ->
        (B,) bool, the utterances that have it (the others get no token of it, routed or not); a
        modality no utterance has is left out."""
        projector = self.projector_for(rates)
        # The encoders give float32; the projector runs in its own dtype (float32 in training, the
        # decoding dtype when the model is cast, e.g. avsr_inference --dtype bfloat16).
        dtype = next(projector.parameters()).dtype
        feats = {}
        for m, (h, h_lengths) in hidden.items():
            if present is not None and not bool(present[m].any()):
                continue
            c, c_lengths = getattr(self, f"{m}_compressor")(h, h_lengths, rate=rates.get(m))
            if present is not None:
                c_lengths = c_lengths * present[m].to(c_lengths.dtype)
            feats[m] = (c.to(dtype), c_lengths)
        out = projector(feats)
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
        """(B, L) transcript ids (-1 padded) + (B, S) waveform and/or (B, T, H, W) frames.

        An elastic model: the encoders run once, then each rate pair of the step (every one, or
        one drawn) is compressed, projected and decoded; the loss is the weighted mean of the
        pairs' (each with its routers' losses), the log has each pair's loss and accuracy."""
        batch_size = text.shape[0]
        hidden = self.encode_inputs(speech, speech_lengths, video, video_lengths, utt_id)
        rows = self._row_tasks(batch_size)
        present = None if rows is None else self._present(rows, text.device)
        extra = {} if rows is None else {"row_modalities": rows}
        pairs = self._step_pairs()
        results = []
        for rates, weight in pairs:
            embeds, proj = self.project(hidden, rates, present)
            ce, dec_stats = self.decoder(embeds, text, text_lengths, **extra)
            loss = ce + proj.aux_loss
            if self.check_finite and not bool(torch.isfinite(loss)):
                raise FloatingPointError(
                    f"non-finite loss (ce={float(ce.detach())}, aux={float(proj.aux_loss.detach())}) "
                    f"in the batch {utt_id}"
                    + (f" at rates {elastic.pair_name(rates)}" if len(self.rate_pairs) > 1 else "")
                )
            stats = dict(loss=loss.detach(), loss_ce=ce.detach(), acc=dec_stats["acc"], **proj.stats)
            results.append((rates, weight, loss, stats))
        if len(results) == 1 and len(self.rate_pairs) == 1:
            _, _, loss, stats = results[0]
        else:
            loss, stats = self._mean_over_pairs(results)
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    # ---------------------------------------------------------------------------- elastic steps
    def _step_pairs(self) -> List[Tuple[elastic.RatePair, float]]:
        """The rate pairs of this step and their weights: every one, or in training with
        ``rate_pair_training: sample`` one drawn with the weights (then weighing 1)."""
        pairs = list(zip(self.rate_pairs, self.pair_weights))
        if len(pairs) > 1 and self.training and self.rate_pair_training == "sample":
            drawn = int(torch.multinomial(torch.tensor(self.pair_weights), 1))
            return [(self.rate_pairs[drawn], 1.0)]
        return pairs

    def _row_tasks(self, batch_size: int) -> Optional[List[str]]:
        """Each utterance's task (None: one task, every utterance reads every input): drawn with
        the weights in training; in validation the tasks in turn, so that its loss covers each."""
        if len(self.tasks) == 1:
            return None
        if self.training:
            drawn = torch.multinomial(torch.tensor(self.task_weights), batch_size, replacement=True).tolist()
        else:
            drawn = [i % len(self.tasks) for i in range(batch_size)]
        return [self.tasks[i] for i in drawn]

    def _present(self, rows: List[str], device) -> Dict[str, torch.Tensor]:
        return {m: torch.tensor([m in MODALITIES[t] for t in rows], device=device) for m in self.modalities}

    @staticmethod
    def _mean_over_pairs(results) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The weighted mean of the pairs' losses and stats, and each pair's loss and accuracy."""
        total = sum(w for _, w, _, _ in results)
        loss = sum(w * pair_loss for _, w, pair_loss, _ in results) / total
        stats = {k: sum(w * st[k] for _, w, _, st in results) / total for k in results[0][3]}
        stats["loss"] = loss.detach()
        for rates, _, pair_loss, st in results:
            name = elastic.pair_name(rates)
            stats[f"loss_{name}"] = pair_loss.detach()
            stats[f"acc_{name}"] = st["acc"]
        return loss, stats

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
        modality: Optional[str] = None,
        audio_rate: Optional[int] = None,
        video_rate: Optional[int] = None,
    ) -> Tuple[List[Tuple[str, float]], ProjectorOutput]:
        """Transcripts and log-probabilities, and the projector's output (routing counts). The
        search settings have no defaults here: smop.inference.settings.DecodeSettings holds them
        (``**settings.search()``). ``modality``, ``audio_rate``, ``video_rate``: the cell of the
        grid to decode (None: the model's modality, each input's first rate); GridError for one it
        was not trained for."""
        modality, rates = self.decoding_choice(modality, audio_rate, video_rate)
        embeds, proj = self.encode(speech, speech_lengths, video, video_lengths, utt_id, rates, modality)
        budget = self.max_new_tokens(
            speech_lengths if "audio" in MODALITIES[modality] else None,
            video_lengths,
            max_new_tokens_per_second,
            max_new_tokens_min,
        )
        return self.decoder.generate(embeds, budget, beam_size, early_stopping=early_stopping), proj

    def decoding_choice(
        self, modality: Optional[str] = None, audio_rate: Optional[int] = None, video_rate: Optional[int] = None
    ) -> Tuple[str, elastic.RatePair]:
        """The modality and rate pair of a decoding request; ValueError listing the trained ones."""
        return elastic.decoding_choice(self.tasks, self.rates, modality, audio_rate, video_rate, self.modality)

    def grid(self) -> Dict[str, object]:
        """What the model was trained for: its modalities and each input's rates."""
        return {"modalities": list(self.tasks), "rates": {m: list(r) for m, r in self.rates.items()}}

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
        elastic_grid = {} if len(self.tasks) == 1 and len(self.rate_pairs) == 1 else {"elastic": self.grid()}
        return {
            "modality": self.modality,
            **elastic_grid,
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
