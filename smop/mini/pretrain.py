"""Stage 0 of the mini recipe: briefly pretrain the small models on the mini training set and
store them in the released formats (Whisper and Llama: HF directories; AV-HuBERT: a fairseq
checkpoint), so that stage 3 trains what it trains on LRS3: frozen encoders + SMoP + LoRA.

The encoders learn with a CTC head over the LLM's tokens (discarded afterwards), through the same
encoder classes the recipe loads them with; Whisper sees babble noise, as real Whisper has seen
noisy speech. The LLM learns the training transcripts.

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
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, WhisperForConditionalGeneration

from smop.data.collate import PadCollate
from smop.data.loaders import MouthNpyReader, Wav16kReader, read_scp
from smop.data.preprocessor import SmopPreprocessor
from smop.encoders.avhubert.checkpoint import convert_fairseq_checkpoint
from smop.encoders.avhubert_encoder import AVHubertVideoEncoder
from smop.encoders.whisper_encoder import WhisperAudioEncoder
from smop.pretrain.export import save_avhubert_fairseq, save_llama, save_whisper, train_spm_tokenizer
from smop.pretrain.lm import pretrain_causal_lm

logger = logging.getLogger("mini_pretrain")

WHISPER = dict(d_model=192, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=768, decoder_layers=1,
               decoder_attention_heads=4, decoder_ffn_dim=256, num_mel_bins=80, max_source_positions=300,
               max_target_positions=64, vocab_size=400, pad_token_id=0, bos_token_id=1, eos_token_id=2,
               decoder_start_token_id=1)
AVHUBERT = dict(encoder_layers=3, encoder_embed_dim=128, encoder_ffn_embed_dim=512, encoder_attention_heads=4,
                conv_pos=16, conv_pos_groups=4, resnet_widths=[8, 16, 32, 64])
LLAMA = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)


class CharUnits:
    """CTC units = characters of the transcripts (0 is the blank)."""

    def __init__(self, texts):
        self.chars = sorted({c for t in texts for c in t})
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars) + 1

    def __call__(self, text: str) -> List[int]:
        return [self.index[c] for c in text if c in self.index]


def load_examples(data_dir: Path, name: str, tokenize: Callable) -> List[Dict]:
    """(utt, raw input, token ids) for every utterance of a data dir; ``name`` is speech or video."""
    reader = Wav16kReader(str(data_dir / "wav.scp")) if name == "speech" else MouthNpyReader(str(data_dir / "video.scp"))
    text = read_scp(str(data_dir / "text"))
    return [{"utt": u, name: reader[u], "ids": np.asarray(tokenize(text[u]), dtype=np.int64)} for u in reader.keys()]


def batches(examples: List[Dict], batch_size: int, rng: random.Random):
    """Length-sorted buckets of ``batch_size``, shuffled, forever."""
    key = "speech" if "speech" in examples[0] else "video"
    order = sorted(range(len(examples)), key=lambda i: examples[i][key].shape[0])
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    while True:
        rng.shuffle(groups)
        yield from groups


def ctc_step(encoder, head, batch, device="cpu"):
    _, data = batch
    name = "speech" if "speech" in data else "video"
    feats, lengths = encoder(data[name].to(device), data[f"{name}_lengths"].to(device))
    logp = head(feats).log_softmax(-1).transpose(0, 1)  # (T, B, V)
    targets = data["ids"]
    return torch.nn.functional.ctc_loss(logp, targets.clamp(min=0), lengths, data["ids_lengths"], blank=0,
                                        zero_infinity=True), logp, lengths


def greedy_error_rate(encoder, head, examples, preprocess, collate, blank=0) -> float:
    """Token error rate of greedy CTC decoding over ``examples``."""
    import jiwer

    encoder.eval()
    refs, hyps = [], []
    with torch.no_grad():
        for i in range(0, len(examples), 16):
            batch = collate([(e["utt"], preprocess(e["utt"], {k: v for k, v in e.items() if k != "utt"})) for e in examples[i : i + 16]])
            _, logp, lengths = ctc_step(encoder, head, batch)
            best = logp.argmax(-1).T
            for row, n, ref in zip(best, lengths, batch[1]["ids"]):
                seq = [int(t) for j, t in enumerate(row[: int(n)]) if t != blank and (j == 0 or t != row[j - 1])]
                hyps.append(" ".join(map(str, seq)) or "-")
                refs.append(" ".join(str(int(t)) for t in ref if t >= 0))
    encoder.train()
    return jiwer.wer(refs, hyps)


def train_ctc(encoder, vocab: int, train, valid, preprocess_train, preprocess_valid, steps, batch_size, lr, seed, what):
    torch.manual_seed(seed)
    head = torch.nn.Linear(encoder.output_size(), vocab)
    params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    collate = PadCollate()
    rng = random.Random(seed)
    it = batches(train, batch_size, rng)
    encoder.train()
    start = time.time()
    for step in range(1, steps + 1):
        idx = next(it)
        batch = collate([(train[i]["utt"], preprocess_train(train[i]["utt"], {k: v for k, v in train[i].items() if k != "utt"}))
                         for i in idx])
        loss, _, _ = ctc_step(encoder, head, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            logger.info(f"{what} step {step}/{steps}: CTC loss {loss.item():.3f} ({time.time() - start:.0f} s)")
    err = greedy_error_rate(encoder, head, valid, preprocess_valid, collate)
    logger.info(f"{what}: validation token error rate (greedy CTC) {100 * err:.1f} %")
    encoder.eval()
    return err


def pretrain_whisper(args, units, tokenize, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(args.seed)
        full = WhisperForConditionalGeneration(__import__("transformers").WhisperConfig(**WHISPER))
        save_whisper(tmp, model=full)
        encoder = WhisperAudioEncoder(tmp, freeze=False, length_aware=True)
    train = load_examples(args.train_dir, "speech", tokenize)
    valid = load_examples(args.valid_dir, "speech", tokenize)
    noisy = SmopPreprocessor(True, None, noise_file=str(args.noise), noise_snrs=args.noise_snrs, audio_mask_max=args.mask_max)
    clean = SmopPreprocessor(False, None)
    train_ctc(encoder, len(units), train, valid, _with_ids(noisy), _with_ids(clean), args.whisper_steps,
              args.batch_size, args.lr, args.seed, "whisper")
    full.model.encoder.load_state_dict(encoder.encoder.state_dict())
    save_whisper(out, model=full)


def pretrain_avhubert(args, units, tokenize, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pt = save_avhubert_fairseq(Path(tmp) / "init.pt", seed=args.seed, **AVHUBERT)
        convert_fairseq_checkpoint(pt, Path(tmp) / "init.safetensors")
        encoder = AVHubertVideoEncoder(str(Path(tmp) / "init.safetensors"), freeze=False)
    train = load_examples(args.train_dir, "video", tokenize)
    valid = load_examples(args.valid_dir, "video", tokenize)
    augment = SmopPreprocessor(True, None, video_mask_max=args.mask_max, crop_size=args.crop_size)
    plain = SmopPreprocessor(False, None, crop_size=args.crop_size)
    train_ctc(encoder, len(units), train, valid, _with_ids(augment), _with_ids(plain), args.avhubert_steps,
              args.batch_size, args.lr, args.seed, "avhubert")
    save_avhubert_fairseq(out, net=encoder.net, **AVHUBERT)


def _with_ids(pre: SmopPreprocessor):
    def run(utt, data):
        ids = data.pop("ids")
        out = pre(utt, data)
        out["ids"] = ids
        return out

    return run


def pretrain_llm(args, out: Path):
    texts = [line.strip() for line in args.lm_text.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = ["Transcribe speech to text.", "Transcribe video to text.", "Transcribe speech and video to text."]
    tok_dir = train_spm_tokenizer(texts + prompts * 20, out.parent / "tokenizer", vocab_size=args.vocab_size)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                         eos_token_id=tokenizer.eos_token_id, **LLAMA))
    loss = pretrain_causal_lm(model, tokenizer, texts, steps=args.lm_steps, batch_size=32, lr=3e-3, seed=args.seed)
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
    p.add_argument("--whisper_steps", type=int, default=400)
    p.add_argument("--avhubert_steps", type=int, default=400)
    p.add_argument("--lm_steps", type=int, default=400)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--crop_size", type=int, default=44, help="mouth crop side (the mini recipe's ROIs are 48x48)")
    p.add_argument("--ctc_units", choices=("chars", "tokens"), default="chars", help="targets of the encoders' CTC")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--mask_max", type=float, default=0.2, help="time masking of the encoder inputs (s)")
    p.add_argument("--noise_snrs", type=lambda s: [None if x == "clean" else float(x) for x in s.split(",")],
                   default="-5,0,5,10,20,clean", help="babble SNRs for the Whisper pretraining")
    p.add_argument("--vocab_size", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    llm_dir = args.out_dir / "llm"
    tokenizer = pretrain_llm(args, llm_dir) if "llm" in models else AutoTokenizer.from_pretrained(str(llm_dir))

    if args.ctc_units == "chars":
        units = tokenize = CharUnits(read_scp(str(args.train_dir / "text")).values())
    else:
        units = tokenizer

        def tokenize(text):
            return tokenizer(text, add_special_tokens=False).input_ids

    if "whisper" in models:
        pretrain_whisper(args, units, tokenize, args.out_dir / "whisper")
    if "avhubert" in models:
        pretrain_avhubert(args, units, tokenize, args.out_dir / "avhubert" / "mini_vox_iter5.pt")


if __name__ == "__main__":
    main()
