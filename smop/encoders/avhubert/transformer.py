"""The wav2vec 2.0 / HuBERT transformer encoder used by AV-HuBERT, in plain torch.

Parameter names follow fairseq (``pos_conv.0.weight_g``/``weight_v``, ``layers.N.self_attn.{k,v,q,
out}_proj``, ``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``, ``layer_norm``).
"""

from typing import Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with fairseq's weight norm over dim 2: w[:, :, k] = g[k] v[:, :, k] / ||v[:, :, k]||."""

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        nn.init.normal_(self.weight_v, mean=0.0, std=(4.0 / (kernel_size * channels)) ** 0.5)

    def weight(self) -> torch.Tensor:
        v = self.weight_v
        norm = v.float().pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        return (self.weight_g.float() * v.float() / norm).to(v.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    """An even kernel with padding k/2 gives one extra frame; drop it."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.remove] if self.remove else x


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        # Registration order k, v, q, out is fairseq's (and so the checkpoint's).
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, T, D), (B, T) True on padding -> (B, T, D)."""
        b, t, d = x.shape

        def split(y):
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, heads: int, layer_norm_first: bool, dropout: float = 0.0):
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.self_attn = SelfAttention(dim, heads, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        # fairseq's gelu: exact erf form, computed in float32.
        h = nn.functional.gelu(self.fc1(x).float()).to(x.dtype)
        return self.dropout(self.fc2(h))

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), key_padding_mask))
            return x + self._ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x + self.dropout(self.self_attn(x, key_padding_mask)))
        return self.final_layer_norm(x + self._ffn(x))


class TransformerEncoder(nn.Module):
    """``gradient_checkpointing``: in training with gradients, each layer's activations are
    recomputed in the backward pass instead of kept (same outputs and gradients)."""

    gradient_checkpointing = False

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        layers: int,
        heads: int,
        layer_norm_first: bool = True,
        conv_pos: int = 128,
        conv_pos_groups: int = 16,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.layer_norm_first = layer_norm_first
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, conv_pos, conv_pos_groups), SamePad(conv_pos), nn.GELU())
        self.layers = nn.ModuleList(
            [EncoderLayer(dim, ffn_dim, heads, layer_norm_first, dropout) for _ in range(layers)]
        )
        self.layer_norm = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, padding_mask: Optional[torch.Tensor], output_layer: Optional[int] = None
    ) -> torch.Tensor:
        """(B, T, D) -> (B, T, D). ``output_layer`` (1-based) stops early, without the final LN."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers, start=1):
            x = checkpoint(layer, x, padding_mask, use_reentrant=False) if recompute else layer(x, padding_mask)
            if output_layer is not None and i == output_layer:
                return x
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x
