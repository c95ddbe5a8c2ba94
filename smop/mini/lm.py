"""Briefly pretrain a small causal LM on a text corpus (mini recipe stage 1, tests).

Gives the tiny LLM what a real one brings to Llama-SMoP: embeddings and an LM head that already
model the language, and the in-context skill of reading the answer out of its prompt, so that
LoRA and the projector only have to ground it in the inputs.
"""

import logging
import random
from typing import List, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)


def in_context_copy(
    ids: List[int], prompt: List[int], rng: random.Random, vocab_size: int, max_repeat: int = 4, noise: float = 0.15
) -> Tuple[List[int], int]:
    """A text-only stand-in for "encoder tokens, instruction, transcript".

    The context holds the transcript's tokens stretched in time (each repeated 1..max_repeat
    times, as a word spans several encoder frames), with random tokens between and in place of
    some of them (silence, unclear frames); then the instruction, then the transcript. A real LLM
    arrives with heads that read an answer out of its context; a tiny LM trained on plain
    sentences has none, and LoRA then needs thousands of steps to grow them from audio alone.
    Returns the sequence (without BOS/EOS) and the number of leading tokens that carry no loss.
    """
    context = []
    for t in ids:
        if rng.random() < noise:
            context.append(rng.randrange(vocab_size))
        context += [
            t if rng.random() >= noise else rng.randrange(vocab_size) for _ in range(rng.randint(1, max_repeat))
        ]
    prefix = context + list(prompt)
    return prefix + list(ids), len(prefix)


def pretrain_causal_lm(
    model,
    tokenizer,
    texts: Sequence[str],
    steps: int = 200,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    copy_prompts: Sequence[str] = (),
    copy_fraction: float = 0.5,
) -> float:
    """Train ``model`` in place on BOS + text + EOS sequences; returns the last batch loss.

    With ``copy_prompts``, a ``copy_fraction`` of the sequences are ``in_context_copy`` ones
    (one of the prompts at random), with the loss on the transcript and EOS only.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = tokenizer.eos_token_id
    texts_ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    prompts = [tokenizer(p, add_special_tokens=False).input_ids for p in copy_prompts]
    vocab = len(tokenizer)

    def example() -> Tuple[List[int], int]:
        ids = texts_ids[rng.randrange(len(texts_ids))]
        if prompts and rng.random() < copy_fraction:
            seq, n_free = in_context_copy(ids, prompts[rng.randrange(len(prompts))], rng, vocab)
            return bos + seq + [eos], len(bos) + n_free
        return bos + ids + [eos], 0

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        batch = [example() for _ in range(batch_size)]
        n = max(len(s) for s, _ in batch)
        ids = torch.tensor([s + [eos] * (n - len(s)) for s, _ in batch])
        mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s, _ in batch])
        labels = ids.masked_fill(mask == 0, -100)
        for i, (_, n_free) in enumerate(batch):
            labels[i, :n_free] = -100
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
