"""Briefly pretrain a small causal LM on a text corpus (mini recipe stage 0, tests).

Gives the tiny LLM what a real one brings to Llama-SMoP: embeddings and an LM head that already
model the language, so that LoRA and the projector only have to ground it in the inputs.
"""
import logging
import random
from typing import Sequence

import torch

logger = logging.getLogger(__name__)


def pretrain_causal_lm(model, tokenizer, texts: Sequence[str], steps: int = 200, batch_size: int = 16,
                       lr: float = 3e-3, seed: int = 0) -> float:
    """Train ``model`` in place on BOS + text + EOS sequences; returns the last batch loss."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    seqs = [bos + tokenizer(t, add_special_tokens=False).input_ids + [tokenizer.eos_token_id] for t in texts]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        batch = [seqs[rng.randrange(len(seqs))] for _ in range(batch_size)]
        n = max(len(s) for s in batch)
        ids = torch.tensor([s + [tokenizer.eos_token_id] * (n - len(s)) for s in batch])
        mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in batch])
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            logger.info(f"LM pretraining step {step}/{steps}: loss {loss.item():.3f}")
    model.eval()
    return loss.item()
