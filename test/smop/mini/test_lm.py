"""Small-LM pretraining: the in-context copy sequences and what they teach."""

import random

import torch

from smop.mini.lm import in_context_copy, pretrain_causal_lm


def test_copy_sequence_ends_with_prompt_and_transcript():
    rng = random.Random(0)
    ids, prompt = [11, 12, 13, 14], [7, 8]
    for _ in range(50):
        seq, n_free = in_context_copy(ids, prompt, rng, vocab_size=100, max_repeat=3, noise=0.0)
        assert seq[n_free:] == ids
        assert seq[n_free - len(prompt) : n_free] == prompt
        context = seq[: n_free - len(prompt)]
        # Without noise the context is the transcript stretched: each token 1..3 times, in order.
        runs = [t for i, t in enumerate(context) if i == 0 or context[i - 1] != t]
        assert runs == ids
        assert len(ids) <= len(context) <= 3 * len(ids)


def test_copy_sequence_noise_replaces_some_tokens():
    rng = random.Random(1)
    ids = list(range(10, 30))
    seq, n_free = in_context_copy(ids, [5], rng, vocab_size=1000, max_repeat=2, noise=0.5)
    context = seq[: n_free - 1]
    foreign = [t for t in context if not 10 <= t < 30]
    assert 0.2 < len(foreign) / len(context) < 0.8


class _Tokenizer:
    """Word-level ids for a toy language: 0 BOS, 1 EOS, 2 the prompt, 3.. words."""

    bos_token_id, eos_token_id = 0, 1

    def __init__(self, words):
        self.index = {w: i + 3 for i, w in enumerate(words)}

    def __len__(self):
        return len(self.index) + 3

    def __call__(self, text, add_special_tokens=False):
        class Ids:
            input_ids = [2 if w == "<prompt>" else self.index[w] for w in text.split()]

        return Ids()


def _copy_accuracy(model, tok, sentences, seed):
    """Greedy transcript accuracy of sentences the LM must read out of its context."""
    rng = random.Random(seed)
    right = total = 0
    with torch.no_grad():
        for text in sentences:
            ids = tok(text).input_ids
            seq, n_free = in_context_copy(ids, [2], rng, len(tok), noise=0.0)
            x = torch.tensor([[tok.bos_token_id] + seq[:n_free]])
            for t in ids:
                nxt = int(model(input_ids=x).logits[0, -1].argmax())
                right += nxt == t
                total += 1
                x = torch.cat([x, torch.tensor([[t]])], 1)
    return right / total


def test_copy_pretraining_teaches_reading_the_context():
    """Random word strings have no prior to learn: only reading the context gets them right."""
    from transformers import LlamaConfig, LlamaForCausalLM

    words = [f"w{i}" for i in range(20)]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(words) for _ in range(4)) for _ in range(400)]
    tok = _Tokenizer(words)
    held_out = [" ".join(rng.choice(words) for _ in range(4)) for _ in range(30)]

    def train(copy):
        torch.manual_seed(0)
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tok),
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                bos_token_id=0,
                eos_token_id=1,
            )
        )
        pretrain_causal_lm(
            model,
            tok,
            texts,
            steps=150,
            batch_size=16,
            lr=3e-3,
            copy_prompts=["<prompt>"] if copy else (),
            copy_fraction=0.7,
        )
        return _copy_accuracy(model, tok, held_out, seed=5)

    plain, copy = train(False), train(True)
    assert plain < 0.1  # chance is 1/20
    assert copy > 0.4, (plain, copy)  # 0.55 measured after these 150 steps
