"""Stage 1 of the mini recipe: briefly pretrain the small models on the mini training set and
store them in the released formats (Whisper and Llama: HF directories; AV-HuBERT: a fairseq
checkpoint), so that stage 3 trains what it trains on LRS3: frozen encoders + SMoP + LoRA.

The encoders learn with joint CTC (characters) and attention-decoder (LLM tokens) heads, discarded
afterwards, through the same encoder classes the recipe loads them with; Whisper hears babble
noise, as real Whisper has heard noisy speech. The LLM learns the training transcripts and to read
a transcript out of its context, the skill a real LLM brings to LLM-based ASR.

    python -m smop.mini.pretrain --train_dir data/train --valid_dir data/valid \
        --lm_text downloads/mini_av/lm_text.txt --noise downloads/mini_av/babble.wav --out_dir pretrained
"""

import argparse
import logging
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

from smop.data.collate import PadCollate
from smop.data.inputs import INPUTS
from smop.data.loaders import MouthNpyReader, Wav16kReader, read_scp
from smop.data.preprocessor import SmopPreprocessor
from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder
from smop.encoders.avhubert.checkpoint import convert_fairseq_checkpoint
from smop.encoders.avhubert.fairseq_writer import save_avhubert_fairseq
from smop.encoders.avhubert_encoder import AVHubertVideoEncoder
from smop.encoders.whisper_encoder import WhisperAudioEncoder
from smop.mini.lm import pretrain_causal_lm
from smop.utils.hf_release import save_llama, save_whisper, train_spm_tokenizer
from smop.utils.log import setup_logging
from smop.utils.masks import make_pad_mask
from smop.utils.pretrained import NO_REMOTE_CODE

logger = logging.getLogger("mini_pretrain")

WHISPER = dict(
    d_model=192,
    encoder_layers=4,
    encoder_attention_heads=4,
    encoder_ffn_dim=768,
    decoder_layers=1,
    decoder_attention_heads=4,
    decoder_ffn_dim=256,
    num_mel_bins=80,
    max_source_positions=300,
    max_target_positions=64,
    vocab_size=400,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=1,
)
AVHUBERT = dict(
    encoder_layers=3,
    encoder_embed_dim=128,
    encoder_ffn_embed_dim=512,
    encoder_attention_heads=4,
    conv_pos=16,
    conv_pos_groups=4,
    resnet_widths=[8, 16, 32, 64],
)
LLAMA = dict(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)


class CharUnits:
    """CTC units = characters of the transcripts (0 is the blank)."""

    def __init__(self, texts):
        self.chars = sorted({c for t in texts for c in t})
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars) + 1

    def __call__(self, text: str) -> List[int]:
        return [self.index[c] for c in text if c in self.index]


def load_examples(data_dir: Path, name: str, chars: Callable, tokenize: Callable) -> List[Dict]:
    """utt, raw input (``name``: speech or video), character ids and LLM token ids of a data dir."""
    modality = next(m for m, i in INPUTS.items() if i.name == name)
    path = str(data_dir / INPUTS[modality].scp)
    reader = Wav16kReader(path) if modality == "audio" else MouthNpyReader(path)
    text = read_scp(str(data_dir / "text"))
    return [
        {
            "utt": u,
            name: reader[u],
            "chars": np.asarray(chars(text[u]), dtype=np.int64),
            "tokens": np.asarray(tokenize(text[u]), dtype=np.int64),
        }
        for u in reader.keys()
    ]


def batches(examples: List[Dict], batch_size: int, rng: random.Random):
    """Length-sorted buckets of ``batch_size``, shuffled, forever."""
    key = "speech" if "speech" in examples[0] else "video"
    order = sorted(range(len(examples)), key=lambda i: examples[i][key].shape[0])
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    while True:
        rng.shuffle(groups)
        yield from groups


class AttentionDecoder(torch.nn.Module):
    """A small transformer decoder over the LLM's tokens, used only to pretrain an encoder."""

    def __init__(self, d_model: int, vocab: int, layers: int = 2, heads: int = 4, max_len: int = 96):
        super().__init__()
        self.sos = vocab
        self.embed = torch.nn.Embedding(vocab + 1, d_model)
        self.pos = torch.nn.Embedding(max_len, d_model)
        layer = torch.nn.TransformerDecoderLayer(
            d_model, heads, 4 * d_model, dropout=0.1, batch_first=True, norm_first=True
        )
        self.decoder = torch.nn.TransformerDecoder(layer, layers)
        self.norm = torch.nn.LayerNorm(d_model)
        self.out = torch.nn.Linear(d_model, vocab)

    def forward(self, memory, memory_pad, ys_in):
        t = ys_in.shape[1]
        x = self.embed(ys_in) + self.pos(torch.arange(t))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        h = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_pad)
        return self.out(self.norm(h))


class PretrainHeads(torch.nn.Module):
    """Joint CTC (characters) and attention (LLM tokens) heads on an encoder, as in ESPnet's hybrid
    training: the attention branch makes a small encoder learn quickly from little data."""

    def __init__(self, d_model: int, n_chars: int, n_tokens: int, eos: int, ctc_weight: float = 0.3):
        super().__init__()
        self.ctc = torch.nn.Linear(d_model, n_chars)
        self.att = AttentionDecoder(d_model, n_tokens)
        self.eos = eos
        self.ctc_weight = ctc_weight

    def loss(self, feats, lengths, chars, char_lengths, tokens, token_lengths):
        logp = self.ctc(feats).log_softmax(-1).transpose(0, 1)
        ctc = torch.nn.functional.ctc_loss(logp, chars.clamp(min=0), lengths, char_lengths, blank=0, zero_infinity=True)
        ys = [t[: int(n)] for t, n in zip(tokens, token_lengths)]
        ys_in = torch.nn.utils.rnn.pad_sequence(
            [torch.cat([t.new_tensor([self.att.sos]), t]) for t in ys], batch_first=True, padding_value=self.eos
        )
        ys_out = torch.nn.utils.rnn.pad_sequence(
            [torch.cat([t, t.new_tensor([self.eos])]) for t in ys], batch_first=True, padding_value=-100
        )
        pad = make_pad_mask(lengths, feats.shape[1])
        att = torch.nn.functional.cross_entropy(self.att(feats, pad, ys_in).transpose(1, 2), ys_out, ignore_index=-100)
        return self.ctc_weight * ctc + (1 - self.ctc_weight) * att, ctc, att

    @torch.no_grad()
    def greedy(self, feats, lengths, max_len: int = 24) -> List[List[int]]:
        pad = make_pad_mask(lengths, feats.shape[1])
        ys = torch.full((feats.shape[0], 1), self.att.sos, dtype=torch.long)
        for _ in range(max_len):
            nxt = self.att(feats, pad, ys)[:, -1].argmax(-1, keepdim=True)
            ys = torch.cat([ys, nxt], 1)
        hyps = []
        for row in ys[:, 1:].tolist():
            hyps.append(row[: row.index(self.eos)] if self.eos in row else row)
        return hyps


def _batch(examples, idx, preprocess, collate):
    return collate(
        [
            (examples[i]["utt"], preprocess(examples[i]["utt"], {k: v for k, v in examples[i].items() if k != "utt"}))
            for i in idx
        ]
    )


def _encode(encoder, data):
    name = "speech" if "speech" in data else "video"
    return encoder(data[name], data[f"{name}_lengths"])


def word_error_rate(encoder, heads, examples, preprocess, collate, decode_text) -> float:
    import jiwer

    encoder.eval()
    refs, hyps = [], []
    with torch.no_grad():
        for i in range(0, len(examples), 32):
            _, data = _batch(examples, range(i, min(i + 32, len(examples))), preprocess, collate)
            feats, lengths = _encode(encoder, data)
            for hyp, ref in zip(heads.greedy(feats, lengths), data["tokens"]):
                refs.append(decode_text([int(t) for t in ref if t >= 0]))
                hyps.append(decode_text(hyp) or "-")
    encoder.train()
    return jiwer.wer(refs, hyps)


def train_encoder(
    encoder,
    heads,
    train,
    valid,
    preprocess_train,
    preprocess_valid,
    steps,
    batch_size,
    lr,
    seed,
    what,
    decode_text,
    valid_every: int = 0,
    clean_steps: int = 0,
):
    """Hybrid CTC/attention training of ``encoder``; returns the validation WER of greedy decoding.

    The first ``clean_steps`` steps see the clean inputs: a small encoder from scratch needs
    hundreds of steps to find the alignment, and noise from the start delays that by several times.
    """
    torch.manual_seed(seed)
    params = [p for p in encoder.parameters() if p.requires_grad] + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    collate = PadCollate()
    it = batches(train, batch_size, random.Random(seed))
    encoder.train()
    start = time.time()
    for step in range(1, steps + 1):
        _, data = _batch(train, next(it), preprocess_train if step > clean_steps else preprocess_valid, collate)
        feats, lengths = _encode(encoder, data)
        loss, ctc, att = heads.loss(
            feats, lengths, data["chars"], data["chars_lengths"], data["tokens"], data["tokens_lengths"]
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            seconds = time.time() - start
            logger.info(
                f"{what} step {step}/{steps}: CTC {ctc.item():.3f}, attention {att.item():.3f} ({seconds:.0f} s)"
            )
        if valid_every and step % valid_every == 0 and step != steps:
            wer = word_error_rate(encoder, heads, valid, preprocess_valid, collate, decode_text)
            logger.info(f"{what} step {step}: validation WER {100 * wer:.1f} %")
    wer = word_error_rate(encoder, heads, valid, preprocess_valid, collate, decode_text)
    logger.info(f"{what}: validation WER of greedy attention decoding {100 * wer:.1f} %")
    encoder.eval()
    return wer


def _train_and_decode(
    args, encoder, name, steps, preprocess_train, preprocess_valid, chars, tokenizer, what, clean_steps: int = 0
):
    def tokenize(text):
        return tokenizer(text, add_special_tokens=False).input_ids

    train = load_examples(args.train_dir, name, chars, tokenize)
    valid = load_examples(args.valid_dir, name, chars, tokenize)
    torch.manual_seed(args.seed)
    heads = PretrainHeads(encoder.output_size(), len(chars), len(tokenizer), tokenizer.eos_token_id, args.ctc_weight)
    return train_encoder(
        encoder,
        heads,
        train,
        valid,
        _with_ids(preprocess_train),
        _with_ids(preprocess_valid),
        steps,
        args.batch_size,
        args.lr,
        args.seed,
        what,
        lambda ids: tokenizer.decode(ids, skip_special_tokens=True).strip(),
        args.valid_every,
        clean_steps,
    )


def whisper_from_scratch(seed: int) -> WhisperForConditionalGeneration:
    """A small Whisper whose conv stem is initialised for training from scratch.

    Transformers initialises every weight with std 0.02, which suits fine-tuning large checkpoints;
    from scratch it makes the stem's output (std ~0.1) vanish under the fixed sinusoidal positions
    (std ~0.6), and the encoder needs thousands of steps before it hears anything. He-normal conv
    weights give the content the same scale as the positions.
    """
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(WhisperConfig(**WHISPER))
    for conv in (model.model.encoder.conv1, model.model.encoder.conv2):
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
    return model


def pretrain_whisper(args, chars, tokenizer, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full = whisper_from_scratch(args.seed)
        save_whisper(tmp, model=full)
        encoder = WhisperAudioEncoder(tmp, freeze=False, length_aware=True)
    noisy = SmopPreprocessor(
        True, None, noise_file=str(args.noise), noise_snrs=args.noise_snrs, audio_mask_max=args.mask_max
    )
    _train_and_decode(
        args,
        encoder,
        "speech",
        args.whisper_steps,
        noisy,
        SmopPreprocessor(False, None),
        chars,
        tokenizer,
        "whisper",
        round(args.whisper_clean_fraction * args.whisper_steps),
    )
    full.model.encoder.load_state_dict(encoder.encoder.state_dict())
    save_whisper(out, model=full)


def pretrain_avhubert(args, chars, tokenizer, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pt = save_avhubert_fairseq(Path(tmp) / "init.pt", seed=args.seed, **AVHUBERT)
        convert_fairseq_checkpoint(pt, Path(tmp) / "init.safetensors")
        encoder = AVHubertVideoEncoder(str(Path(tmp) / "init.safetensors"), freeze=False)
    augment = SmopPreprocessor(True, None, video_mask_max=args.mask_max, crop_size=args.crop_size)
    plain = SmopPreprocessor(False, None, crop_size=args.crop_size)
    _train_and_decode(args, encoder, "video", args.avhubert_steps, augment, plain, chars, tokenizer, "avhubert")
    save_avhubert_fairseq(out, net=encoder.net, **AVHUBERT)


def _with_ids(pre: SmopPreprocessor):
    """The preprocessor on the media; the target ids pass through."""

    def run(utt, data):
        ids = {k: data.pop(k) for k in ("chars", "tokens")}
        out = pre(utt, data)
        out.update(ids)
        return out

    return run


def pretrain_llm(args, out: Path):
    texts = [line.strip() for line in args.lm_text.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = list(HFCausalLMDecoder.prompts().values())  # the mini configs keep the decoder's prompts
    tok_dir = train_spm_tokenizer(texts + prompts * 50, out.parent / "tokenizer", vocab_size=args.vocab_size)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), **NO_REMOTE_CODE)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **LLAMA
        )
    )
    # Briefly: a small LM trained to convergence on plain GRID text becomes so sure of its prior that
    # LoRA and the projector take many times longer to make it listen. Half of its sequences read
    # the transcript out of their context instead (in_context_copy), a skill stage 3 builds on from
    # its first epoch (with plain text only, its validation accuracy stayed low for epochs).
    loss = pretrain_causal_lm(
        model,
        tokenizer,
        texts,
        steps=args.lm_steps,
        batch_size=32,
        lr=args.lm_lr,
        seed=args.seed,
        copy_prompts=prompts,
        copy_fraction=args.lm_copy_fraction,
    )
    logger.info(f"LLM: final training loss {loss:.3f} ({math.exp(loss):.2f} perplexity per token)")
    save_llama(out, tok_dir, model=model)
    return tokenizer


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_dir", type=Path, required=True)
    p.add_argument("--valid_dir", type=Path, required=True)
    p.add_argument("--lm_text", type=Path, required=True)
    p.add_argument("--noise", type=Path, required=True)
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--models", default="llm,whisper,avhubert")
    p.add_argument("--whisper_steps", type=int, default=1000)
    # Validation WER after 600 / 800 / 1000 steps: 28.3 / 15.7 / 10.7 %, and the VSR and AVSR models
    # follow it. 1000 steps end about 2 minutes after Whisper's when the two run side by side
    # (local/prepare_models.sh).
    p.add_argument("--avhubert_steps", type=int, default=1000)
    p.add_argument("--lm_steps", type=int, default=150)
    p.add_argument("--lm_lr", type=float, default=1e-3)
    p.add_argument(
        "--lm_copy_fraction",
        type=float,
        default=0.5,
        help="share of the LM's sequences that read the transcript out of a stretched, noisy copy in context",
    )
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--crop_size", type=int, default=44, help="mouth crop side (the mini recipe's ROIs are 48x48)")
    # 2e-3 left both encoders with a far higher validation WER after the same steps
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ctc_weight", type=float, default=0.3, help="CTC share of the encoders' pretraining loss")
    p.add_argument("--valid_every", type=int, default=0, help="log the validation WER every N steps (0: at the end)")
    # a larger clean share before noise and masking start gave the lower validation WER
    p.add_argument(
        "--whisper_clean_fraction",
        type=float,
        default=0.6,
        help="share of the Whisper pretraining steps on clean, unmasked speech before noise and masking start",
    )
    p.add_argument("--mask_max", type=float, default=0.2, help="time masking of the encoder inputs (s)")
    p.add_argument(
        "--noise_snrs",
        type=lambda s: [None if x == "clean" else float(x) for x in s.split(",")],
        default="0,5,10,20,clean,clean",
        help="babble SNRs for the Whisper pretraining",
    )
    p.add_argument(
        "--vocab_size", type=int, default=500, help="sentencepiece BPE (byte fallback): GRID words and prompts whole"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(cmd)
    setup_logging()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    llm_dir = args.out_dir / "llm"
    tokenizer = (
        pretrain_llm(args, llm_dir)
        if "llm" in models
        else AutoTokenizer.from_pretrained(str(llm_dir), **NO_REMOTE_CODE)
    )

    chars = CharUnits(read_scp(str(args.train_dir / "text")).values())
    if "whisper" in models:
        pretrain_whisper(args, chars, tokenizer, args.out_dir / "whisper")
    if "avhubert" in models:
        pretrain_avhubert(args, chars, tokenizer, args.out_dir / "avhubert" / "mini_vox_iter5.pt")


if __name__ == "__main__":
    main()
