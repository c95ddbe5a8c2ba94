"""AV-HuBERT video encoder without fairseq (frozen by default)."""

import logging
from typing import Optional, Tuple

import torch

from smop.encoders.abs_video_encoder import AbsVideoEncoder
from smop.encoders.avhubert.checkpoint import PRETRAINING_KEYS, load_avhubert
from smop.encoders.avhubert.model import AVHubertNet
from smop.utils.frozen import FreezableMixin, freeze_module, parse_dtype
from smop.utils.masks import check_batch

logger = logging.getLogger(__name__)


class AVHubertVideoEncoder(FreezableMixin, AbsVideoEncoder):
    """88x88 grayscale mouth crops at 25 fps -> AV-HuBERT features at 25 Hz.

    Args:
        checkpoint: ``.safetensors`` written by ``python -m smop.bin.convert_avhubert``.
        output_layer: 1-based transformer layer to stop at (no final LayerNorm); None = all.
        freeze: keep the encoder frozen (and in eval mode).
        frozen_dtype: dtype of the frozen weights (float32, bfloat16, float16).
        gradient_checkpointing: recompute each transformer layer's activations in the backward
            pass instead of keeping them (fine-tuning, ``freeze: false``; a frozen encoder keeps
            none anyway).
    """

    PRETRAINED_ARGS = {"checkpoint": "file"}
    PRETRAINED_SOURCE = "convert the official checkpoint with python -m smop.bin.convert_avhubert"
    # The audio branch is not used for video-only features.
    IGNORED_KEYS = PRETRAINING_KEYS + ("feature_extractor_audio.proj.weight", "feature_extractor_audio.proj.bias")

    def __init__(
        self,
        checkpoint: str,
        output_layer: Optional[int] = None,
        freeze: bool = True,
        frozen_dtype: str = "float32",
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.freeze = freeze
        state, cfg = load_avhubert(checkpoint)
        self.config = cfg
        if output_layer is not None and not 1 <= output_layer <= cfg["encoder_layers"]:
            raise ValueError(f"output_layer must be in 1..{cfg['encoder_layers']}, got {output_layer}")
        self.output_layer = output_layer
        self.net = AVHubertNet(cfg)
        state = {k: v for k, v in state.items() if k not in self.IGNORED_KEYS}
        result = self.net.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise RuntimeError(
                f"{checkpoint}: AV-HuBERT key mismatch; missing {result.missing_keys[:8]}, "
                f"unexpected {result.unexpected_keys[:8]}"
            )
        self.frozen_dtype = parse_dtype(frozen_dtype) if freeze else None
        if freeze:
            freeze_module(self.net)
        if gradient_checkpointing and freeze:
            logger.warning(
                "avhubert: gradient_checkpointing has no effect on a frozen encoder (it runs without gradients)"
            )
        self.net.encoder.gradient_checkpointing = gradient_checkpointing
        self.to(torch.float32)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        # BatchNorm needs its weights in the dtype of its float32 running statistics, so the
        # ResNet front end (11 M parameters) always stays in float32.
        self.net.feature_extractor_video.resnet.float()
        return self

    def output_size(self) -> int:
        return self.config["encoder_embed_dim"]

    def forward(self, video: torch.Tensor, video_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H, W) normalised frames, (B,) frames -> (B, T, D), (B,)."""
        if video.dim() != 4:
            raise ValueError(f"AV-HuBERT expects (B, T, H, W) grayscale frames, got shape {tuple(video.shape)}")
        check_batch("avhubert", video, video_lengths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            x = self.net(video, video_lengths, self.output_layer)
        return x.float(), video_lengths
