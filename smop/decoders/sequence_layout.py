"""The LLM input sequence: one tested place for its layout.

    BOS, <audio> A_1..A_n </audio>, <video> V_1..V_m </video>, prompt, [transcript, EOS]

An utterance without one modality (an elastic model's ASR or VSR row) has neither its tokens nor
its markers, and the prompt of the modalities it has: the sequence the ASR or VSR model builds.

Sequences are left-padded, so every utterance ends at the last position: generation continues all
of them from the same step, and in training the transcript of every utterance sits inside the last
``max(len(transcript)) + 1`` positions, the only ones that need LM-head logits.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch


@dataclass
class LLMInputs:
    inputs_embeds: torch.Tensor  # (B, L, D)
    attention_mask: torch.Tensor  # (B, L) 1 on real positions (left padding)
    position_ids: torch.Tensor  # (B, L) 0.. on real positions, 0 on padding
    labels: Optional[torch.Tensor]  # (B, L) target ids, -100 elsewhere (training only)


def position_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """The same rule ``generate`` uses, so that training and decoding agree."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 0)


def build_llm_inputs(
    modality_order: Sequence[str],
    embeds: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
    boundaries: Dict[str, torch.Tensor],
    bos: Optional[torch.Tensor],
    prompt: Union[torch.Tensor, Sequence[torch.Tensor]],
    targets: Optional[List[torch.Tensor]] = None,
    target_embed=None,
    row_modalities: Optional[Sequence[Sequence[str]]] = None,
) -> LLMInputs:
    """Assemble left-padded LLM inputs.

    Args:
        modality_order: modalities in sequence order (audio before video).
        embeds: modality -> ((B, T, D) projected tokens, (B,) lengths).
        boundaries: modality -> (2, D) begin/end embeddings.
        bos: (D,) embedding of the BOS token, or None if the LLM has none.
        prompt: (P, D) prompt embeddings, or one (P_i, D) per utterance.
        targets: per utterance, the (L_i,) target ids (transcript + EOS); training only.
        target_embed: ids -> embeddings (the LLM's input embedding), with ``targets``.
        row_modalities: per utterance, the modalities it has (None: every one in ``embeds``).
    """
    present = [m for m in modality_order if m in embeds]
    batch = next(iter(embeds.values()))[0].shape[0]
    rows, label_rows = [], []
    for i in range(batch):
        parts = [] if bos is None else [bos.unsqueeze(0)]
        row_prompt = prompt if isinstance(prompt, torch.Tensor) else prompt[i]
        for m in present if row_modalities is None else [m for m in present if m in row_modalities[i]]:
            x, lengths = embeds[m]
            parts += [boundaries[m][:1], x[i, : int(lengths[i])].to(row_prompt.dtype), boundaries[m][1:]]
        parts.append(row_prompt)
        n_prefix = sum(p.shape[0] for p in parts)
        labels = None
        if targets is not None:
            parts.append(target_embed(targets[i]).to(row_prompt.dtype))
            labels = torch.cat([targets[i].new_full((n_prefix,), -100), targets[i]])
        rows.append(torch.cat(parts))
        label_rows.append(labels)

    length = max(r.shape[0] for r in rows)
    dim = rows[0].shape[1]
    inputs = rows[0].new_zeros(batch, length, dim)
    mask = torch.zeros(batch, length, dtype=torch.long, device=inputs.device)
    labels = None
    if targets is not None:
        labels = torch.full((batch, length), -100, dtype=torch.long, device=inputs.device)
    for i, r in enumerate(rows):
        n = r.shape[0]
        inputs[i, length - n :] = r
        mask[i, length - n :] = 1
        if labels is not None:
            labels[i, length - n :] = label_rows[i]
    return LLMInputs(inputs, mask, position_ids_from_mask(mask), labels)
