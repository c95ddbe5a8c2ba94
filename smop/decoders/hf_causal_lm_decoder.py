"""A frozen Hugging Face causal LM with LoRA adapters (peft) as the transcript decoder."""

import functools
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList

from smop.data.inputs import MODALITIES
from smop.decoders import quantization as quant
from smop.decoders.abs_decoder import AbsDecoder, ModalityEmbeds, TextEncoder
from smop.decoders.sequence_layout import build_llm_inputs
from smop.utils.frozen import FrozenDtypeMixin, enable_activation_checkpointing, parse_dtype
from smop.utils.pretrained import NO_REMOTE_CODE, PretrainedError, resolve_pretrained_dir

logger = logging.getLogger(__name__)

MODALITY_ORDER = ("audio", "video")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # a fast tokenizer, or a sentencepiece model
MODEL_PATH_NAME = "model_name_or_path of the LLM"  # how messages name the model argument
# The authors' instructions (Llama-AVSR / Llama-SMoP), placed after the modality tokens.
DEFAULT_PROMPTS = {
    "audio": "Transcribe speech to text.",
    "video": "Transcribe video to text.",
    "audiovisual": "Transcribe speech and video to text.",
}


def modality_key(modalities: Sequence[str]) -> str:
    """The prompt's key of a set of input modalities: audio, video or audiovisual."""
    return "audiovisual" if len(set(modalities)) == 2 else modalities[0]


class EosAtBudget(LogitsProcessor):
    """Forces EOS once an utterance has used its own token budget.

    ``generate`` has one max length per batch; enforcing each utterance's budget inside the search
    (rather than truncating afterwards) makes a batch decode exactly like one-by-one decoding.
    """

    def __init__(self, budgets: List[int], eos_id: int, num_beams: int):
        self.budgets = torch.tensor(budgets).repeat_interleave(num_beams)
        self.eos_id = eos_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # With inputs_embeds only, input_ids holds just the generated tokens.
        done = self.budgets.to(scores.device) <= input_ids.shape[1]
        if bool(done.any()):
            scores = scores.clone()
            scores[done] = float("-inf")
            scores[done, self.eos_id] = 0.0
        return scores


def _contiguous_input(module, args):
    """generate() hands the output head the last position of each prompt, a strided view. On CPU
    a strided (B, 1, D) input sends the product through a batched matmul that copies the whole
    vocabulary matrix once per row, which made a beam-15 prefill with Llama-3.2-1B in bf16 three
    orders of magnitude slower (found with the bench case batched_decoding). A contiguous copy of
    the input avoids it."""
    return (args[0].contiguous(), *args[1:])


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_name_or_path: str):
    """The LLM's own tokenizer, from a local directory or the HF cache (never downloaded)."""
    path = resolve_pretrained_dir(model_name_or_path, MODEL_PATH_NAME)
    try:
        return AutoTokenizer.from_pretrained(path, **NO_REMOTE_CODE)
    except (OSError, ValueError, ImportError, TypeError) as e:
        # transformers answers a missing tokenizer file with "install sentencepiece or tiktoken"
        held = [name for name in TOKENIZER_FILES if (Path(path) / name).is_file()]
        if not held:
            raise PretrainedError(
                f"{MODEL_PATH_NAME}: {path} holds no tokenizer ({' or '.join(TOKENIZER_FILES)}); "
                "copy the LLM's tokenizer files into it"
            ) from None
        raise PretrainedError(
            f"{MODEL_PATH_NAME}: {Path(path) / held[0]}: the tokenizer cannot be read ({e})"
        ) from None


def unmatched_lora_targets(module_names: Sequence[str], targets: Union[str, Sequence[str]]) -> List[str]:
    """The LoRA targets that name none of ``module_names`` (peft skips such a name silently when
    another one matches)."""
    import re

    if isinstance(targets, str):  # peft: a string is a regular expression over the full names
        return [] if any(re.fullmatch(targets, n) for n in module_names) else [targets]
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in module_names)]


def _lora_targets_message(missing: List[str], model_name_or_path: str) -> str:
    return (
        f"{missing} name no module of {model_name_or_path} (LoRA would silently skip them); "
        "e.g. q_proj, k_proj, v_proj, o_proj for Llama"
    )


class HFCausalLMDecoder(FrozenDtypeMixin, AbsDecoder):
    """Any ``AutoModelForCausalLM`` (Llama 3.x, ...), frozen, with LoRA on ``lora_target_modules``.

    The begin/end markers around each modality's tokens are learned embeddings of ours; the frozen
    vocabulary is never resized.

    Args:
        input_modalities: the modalities present, given by the task (audio, video or both).
        model_name_or_path: local directory (``save_pretrained``) or a hub id in the HF cache.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: peft ``LoraConfig``; lora_r 0 = no LoRA.
        frozen_dtype: dtype of the frozen LLM weights; LoRA and markers stay float32.
        prompt_audio, prompt_video, prompt_audiovisual: instruction after the modality tokens.
        gradient_checkpointing: recompute LLM activations in backward (long sequences, big LLMs).
        quantization: the LLM's linear layers in 4 or 8 bits (QLoRA, bitsandbytes):
            ``{bits: 4|8, type: nf4|fp4, double_quant: bool, compute_dtype: float32|bfloat16|float16}``
            (smop.decoders.quantization); None: unquantized, in ``frozen_dtype``.
    """

    PRETRAINED_ARGS = {"model_name_or_path": "dir"}

    @classmethod
    def text_encoder(cls, model_name_or_path: str, **_) -> TextEncoder:
        tokenizer = load_tokenizer(str(model_name_or_path))
        return TextEncoder(lambda text: tokenizer(text, add_special_tokens=False).input_ids, tokenizer.unk_token_id)

    @classmethod
    def prompts(
        cls,
        prompt_audio: str = DEFAULT_PROMPTS["audio"],
        prompt_video: str = DEFAULT_PROMPTS["video"],
        prompt_audiovisual: str = DEFAULT_PROMPTS["audiovisual"],
        **_,
    ) -> Dict[str, str]:
        return {"audio": prompt_audio, "video": prompt_video, "audiovisual": prompt_audiovisual}

    @classmethod
    def check_conf(
        cls,
        key: str,
        model_name_or_path: str,
        lora_r: int,
        lora_target_modules: Sequence[str],
        quantization: Optional[dict] = None,
        frozen_dtype: str = "float32",
        **_,
    ) -> None:
        """The quantization setting (and that bitsandbytes is there for it), and the LoRA targets
        against the LLM's module names, the LLM built on the meta device from its config (no
        weights load)."""
        if quant.parse_quantization(quantization, f"{key}.quantization", frozen_dtype) is not None:
            quant.check_available(f"{key}.quantization")
        if lora_r <= 0:
            return
        from accelerate import init_empty_weights
        from transformers import AutoConfig

        path = resolve_pretrained_dir(model_name_or_path, f"{key}.model_name_or_path")
        with init_empty_weights():
            llm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path, **NO_REMOTE_CODE))
        missing = unmatched_lora_targets([n for n, _ in llm.named_modules()], lora_target_modules)
        if missing:
            raise ValueError(f"{key}.lora_target_modules: {_lora_targets_message(missing, model_name_or_path)}")

    def __init__(
        self,
        input_modalities: Sequence[str],
        model_name_or_path: str,
        lora_r: int = 64,
        lora_alpha: float = 8.0,
        lora_dropout: float = 0.05,
        lora_target_modules: Sequence[str] = ("q_proj", "v_proj"),
        frozen_dtype: str = "float32",
        prompt_audio: str = DEFAULT_PROMPTS["audio"],
        prompt_video: str = DEFAULT_PROMPTS["video"],
        prompt_audiovisual: str = DEFAULT_PROMPTS["audiovisual"],
        gradient_checkpointing: bool = False,
        quantization: Optional[dict] = None,
    ):
        super().__init__()
        unknown = set(input_modalities) - set(MODALITY_ORDER)
        if unknown or not input_modalities:
            raise ValueError(f"input_modalities must be a non-empty subset of {MODALITY_ORDER}, got {input_modalities}")
        self.modalities = [m for m in MODALITY_ORDER if m in input_modalities]
        self.tokenizer = load_tokenizer(model_name_or_path)
        self.text = self.text_encoder(model_name_or_path)
        self.frozen_dtype = parse_dtype(frozen_dtype)
        self.quantization = quant.parse_quantization(quantization, "quantization", frozen_dtype)
        extra = {}
        if self.quantization is not None:
            quant.check_available()
            # Linear layers quantized as they load; the embeddings and the output head are not.
            extra["quantization_config"] = quant.bnb_config(self.quantization)
        llm, info = AutoModelForCausalLM.from_pretrained(
            resolve_pretrained_dir(model_name_or_path, MODEL_PATH_NAME),
            **NO_REMOTE_CODE,
            dtype=self.frozen_dtype,
            output_loading_info=True,
            **extra,
        )
        if info["missing_keys"]:
            raise RuntimeError(f"{model_name_or_path}: LLM weights missing: {sorted(info['missing_keys'])[:5]}")
        # generate() fills every setting smop leaves unset from the checkpoint's
        # generation_config.json (sampling, min_new_tokens, repetition_penalty, ...); with a blank
        # one, decoding depends on smop's settings and transformers' neutral defaults only.
        llm.generation_config = GenerationConfig()
        if self.quantization is not None:
            # peft's k-bit preparation freezes the LLM and upcasts its unquantized parameters to
            # float32; the ``self.to`` below casts them back to frozen_dtype (FrozenDtypeMixin), so
            # bf16 embeddings and head stay bf16. Activation checkpointing is smop's switch below.
            llm = prepare_model_for_kbit_training(llm, use_gradient_checkpointing=False)
            quant.keep_one_weight_layout(llm)
            logger.info(
                f"{model_name_or_path}: linear layers in "
                f"{quant.describe(self.quantization, frozen_dtype)}; embeddings and output head in {frozen_dtype}"
                + (" (LLM.int8 quantizes each layer's inputs from float16)" if self.quantization["bits"] == 8 else "")
            )
        for p in llm.parameters():
            p.requires_grad_(False)
        head = llm.get_output_embeddings()
        if head is not None:
            head.register_forward_pre_hook(_contiguous_input)
        if gradient_checkpointing:
            enable_activation_checkpointing(llm)
        self.lora_settings = {"lora_r": lora_r}
        if lora_r > 0:
            missing = unmatched_lora_targets([n for n, _ in llm.named_modules()], lora_target_modules)
            if missing:
                raise ValueError(f"lora_target_modules: {_lora_targets_message(missing, model_name_or_path)}")
            # peft: a string is one regular expression over the full module names, a list names modules
            targets = lora_target_modules if isinstance(lora_target_modules, str) else list(lora_target_modules)
            self.lora_settings.update(
                lora_alpha=float(lora_alpha), lora_dropout=float(lora_dropout), lora_target_modules=targets
            )
            lora = LoraConfig(
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules=targets,
                bias="none",
                task_type="CAUSAL_LM",
            )
            llm = get_peft_model(llm, lora, autocast_adapter_dtype=True)
            for n, p in llm.named_parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        self.llm = llm

        tok = self.tokenizer
        if tok.eos_token_id is None:
            raise ValueError(f"{model_name_or_path}: the tokenizer has no EOS token")
        self.eos_id = tok.eos_token_id
        self.bos_id = tok.bos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_id
        key = modality_key(self.modalities)
        prompts = self.prompts(prompt_audio, prompt_video, prompt_audiovisual)
        self.prompt_text = prompts[key]
        self.register_buffer(
            "prompt_ids", torch.tensor(self.tokenize(self.prompt_text), dtype=torch.long), persistent=False
        )
        # The prompts of the other modality sets an audio-visual LLM can read (an elastic model's
        # ASR and VSR utterances), as token ids: no buffers, so the module's state is as before.
        self.subset_prompt_ids = {m: self.tokenize(prompts[m]) for m in self.modalities if m != key}
        d = self.embed_size()
        std = float(self._input_embeddings().weight.float().std())
        self.boundary = nn.ParameterDict({m: nn.Parameter(torch.randn(2, d) * std) for m in self.modalities})
        self.to(torch.float32)

    # ----------------------------------------------------------------------------------- helpers
    def _input_embeddings(self) -> nn.Embedding:
        return self.llm.get_input_embeddings()

    def embed_size(self) -> int:
        return self._input_embeddings().weight.shape[1]

    def summary(self) -> Dict[str, object]:
        """The LLM's class, its frozen dtype and the LoRA adapters as built (r 0: none)."""
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        return {
            "type": type(self).__name__,
            "llm": type(base).__name__,
            "frozen_dtype": str(self.frozen_dtype).replace("torch.", ""),
            **({"quantization": self.quantization} if self.quantization else {}),
            **self.lora_settings,
        }

    def tokenize(self, text: str) -> List[int]:
        return self.text.encode(text)

    def _llm_dtype(self) -> torch.dtype:
        return self._input_embeddings().weight.dtype

    def _prompt_embeds(self, key: str) -> torch.Tensor:
        emb = self._input_embeddings()
        if key == modality_key(self.modalities):
            return emb(self.prompt_ids)
        return emb(torch.tensor(self.subset_prompt_ids[key], dtype=torch.long, device=self.prompt_ids.device))

    def _inputs(
        self,
        embeds: ModalityEmbeds,
        targets: Optional[List[torch.Tensor]] = None,
        row_modalities: Optional[Sequence[str]] = None,
    ):
        """LLM inputs of ``embeds``: every utterance reads the modalities ``embeds`` holds (a subset
        of the decoder's: an elastic model decoded as ASR or VSR), or those ``row_modalities`` names."""
        emb = self._input_embeddings()
        dtype = self._llm_dtype()
        bos = None if self.bos_id is None else emb.weight[self.bos_id]
        unknown = set(embeds) - set(self.modalities)
        if unknown or not embeds:
            raise ValueError(f"decoder built for {self.modalities}, got embeddings of {sorted(embeds)}")
        if row_modalities is None:
            prompt, rows = self._prompt_embeds(modality_key([m for m in self.modalities if m in embeds])), None
        else:
            keys = sorted(set(row_modalities))
            bad = [k for k in keys if k not in MODALITIES or not set(MODALITIES[k]) <= set(embeds)]
            if bad:
                raise ValueError(f"row modalities {bad}: the embeddings hold {sorted(embeds)} only")
            by_key = {k: self._prompt_embeds(k) for k in keys}
            prompt, rows = [by_key[k] for k in row_modalities], [MODALITIES[k] for k in row_modalities]
        return build_llm_inputs(
            self.modalities,
            embeds,
            {m: b.to(dtype) for m, b in self.boundary.items()},
            bos,
            prompt,
            targets,
            emb,
            rows,
        )

    # ---------------------------------------------------------------------------------- training
    def forward(
        self,
        embeds: ModalityEmbeds,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        row_modalities: Optional[Sequence[str]] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """CE over transcript + EOS tokens; (B, L) ids padded with -1."""
        eos = text.new_tensor([self.eos_id])
        targets = [torch.cat([t[: int(n)], eos]) for t, n in zip(text, text_lengths)]
        inputs = self._inputs(embeds, targets, row_modalities)
        # Left padding puts every target inside the last k positions: only they need logits.
        k = max(t.shape[0] for t in targets)
        out = self.llm(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            position_ids=inputs.position_ids,
            logits_to_keep=k + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1].float()  # position p predicts token p + 1
        labels = inputs.labels[:, -k:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        with torch.no_grad():
            valid = labels != -100
            acc = (logits.argmax(-1)[valid] == labels[valid]).float().mean()
        return loss, {"acc": acc.detach(), "n_tokens": valid.sum().detach().float()}

    # --------------------------------------------------------------------------------- decoding
    def generation_settings(self, beam_size: int, early_stopping: bool = False) -> dict:
        """Deterministic search, every setting explicit: nothing comes from the LLM checkpoint's
        generation_config.json (Llama checkpoints ship temperature 0.6 sampling; others set
        min_new_tokens or repetition penalties). ``early_stopping`` as in transformers' beam search
        (False, its default, is what the authors decoded with). The token budget (max_new_tokens)
        is set per batch from the utterances' durations."""
        return dict(
            num_beams=beam_size,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            length_penalty=1.0,
            early_stopping=early_stopping,
            min_new_tokens=0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_return_sequences=1,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            bos_token_id=self.bos_id,
            return_dict_in_generate=True,
            output_scores=True,
        )

    @torch.no_grad()
    def generate(
        self,
        embeds: ModalityEmbeds,
        max_new_tokens: List[int],
        beam_size: int = 1,
        extra_processors: Sequence[LogitsProcessor] = (),
        early_stopping: bool = False,
    ) -> List[Tuple[str, float]]:
        """``extra_processors`` run after the budget one (e.g. a timer in the benchmarks)."""
        inputs = self._inputs(embeds)
        config = GenerationConfig(
            **self.generation_settings(beam_size, early_stopping), max_new_tokens=max(max_new_tokens) + 1
        )
        out = self.llm.generate(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList(
                [EosAtBudget(max_new_tokens, self.eos_id, beam_size), *extra_processors]
            ),
        )
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        token_scores = base.compute_transition_scores(
            out.sequences, out.scores, getattr(out, "beam_indices", None), normalize_logits=beam_size == 1
        )
        results = []
        for seq, scores in zip(out.sequences, token_scores):
            ids = seq.tolist()
            n = ids.index(self.eos_id) if self.eos_id in ids else len(ids)
            score = float(scores[: n + 1].float().sum())  # the transcript and its EOS
            results.append((self.tokenizer.decode(ids[:n], skip_special_tokens=True).strip(), score))
        return results
