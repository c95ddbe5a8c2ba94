"""The frozen LLM in 4 or 8 bits (QLoRA): ``decoder_conf.quantization`` checked, and turned into
transformers' ``BitsAndBytesConfig``.

Only the LLM's linear layers are quantized (bitsandbytes' ``Linear4bit`` / ``Linear8bitLt``); its
embeddings and output head stay in ``frozen_dtype``, LoRA and the modality markers in float32. The
LLM on disk stays unquantized: every build quantizes it again, so a pack stores it once.
"""

import importlib.util
import logging
from typing import Any, Dict, Mapping, Optional

from smop.utils.frozen import DTYPES

logger = logging.getLogger(__name__)

BITS = (4, 8)
TYPES = ("nf4", "fp4")  # bitsandbytes' 4-bit data types
KEYS = ("bits", "type", "double_quant", "compute_dtype")
INSTALL_HINT = "pip install smop[quant] (or tools/install.sh --extra quant)"


def bitsandbytes_available() -> bool:
    """Whether bitsandbytes can be imported (the ``quant`` extra); the config check asks here."""
    return importlib.util.find_spec("bitsandbytes") is not None


def parse_quantization(value: Any, key: str = "quantization", frozen_dtype: str = "float32") -> Optional[Dict]:
    """``value`` (None, or a mapping of KEYS) as a complete setting with its defaults, or None for
    an unquantized LLM; ValueError naming ``key``, the bad entry and the valid ones.

    Defaults: 4-bit NF4 with double quantization, computing in ``frozen_dtype`` (float32 on a CPU,
    where bfloat16 is emulated and several times slower)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: a mapping of {', '.join(KEYS)} (e.g. {{bits: 4, type: nf4}}), got {value!r}")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ValueError(f"{key}: unknown key(s) {unknown}; the keys are {', '.join(KEYS)}")
    bits = value.get("bits", 4)
    if bits not in BITS:
        raise ValueError(f"{key}.bits: {bits!r} is not one of {', '.join(map(str, BITS))}")
    qtype = str(value.get("type", "nf4")).lower()
    if qtype not in TYPES:
        raise ValueError(f"{key}.type: {value.get('type')!r} is not one of {', '.join(TYPES)}")
    if bits == 8:
        if set(value) - {"bits"}:
            # LLM.int8 computes in the dtype of its inputs, the frozen_dtype of the embeddings.
            raise ValueError(f"{key}: type, double_quant and compute_dtype are settings of 4 bits; 8 bits take none")
        return {"bits": 8}
    double_quant = value.get("double_quant", True)
    if not isinstance(double_quant, bool):
        raise ValueError(f"{key}.double_quant: true or false, got {double_quant!r}")
    compute_dtype = value.get("compute_dtype", frozen_dtype)
    if compute_dtype not in DTYPES:
        raise ValueError(f"{key}.compute_dtype: {compute_dtype!r} is not one of {', '.join(DTYPES)}")
    return {"bits": 4, "type": qtype, "double_quant": double_quant, "compute_dtype": compute_dtype}


def check_available(key: str = "quantization") -> None:
    if not bitsandbytes_available():
        raise ValueError(f"{key}: the LLM in 4 or 8 bits needs bitsandbytes, which is not installed: {INSTALL_HINT}")


def bnb_config(quant: Dict):
    """transformers' BitsAndBytesConfig of a :func:`parse_quantization` result."""
    from transformers import BitsAndBytesConfig

    if quant["bits"] == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant["type"],
        bnb_4bit_use_double_quant=quant["double_quant"],
        bnb_4bit_compute_dtype=DTYPES[quant["compute_dtype"]],
    )


def describe(quant: Optional[Dict], frozen_dtype: str) -> str:
    """The frozen LLM's linear layers in words: '4-bit nf4 (double quantization), float32 compute'."""
    if quant is None:
        return f"{frozen_dtype} (not quantized)"
    if quant["bits"] == 8:
        return f"8-bit (LLM.int8), {frozen_dtype} compute"
    double = ", double quantization" if quant["double_quant"] else ""
    return f"4-bit {quant['type']}{double}, {quant['compute_dtype']} compute"


def cli_value(text: str):
    """``--quantization``'s value: ``none`` (decode unquantized) or a YAML mapping (``{bits: 4}``)."""
    if text.strip().lower() == "none":
        return "none"
    import yaml

    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ValueError(f"none or a mapping of {', '.join(KEYS)} such as '{{bits: 4, type: nf4}}', got {text!r}")
    return value


def override(decoder_conf: Mapping, quantization: Any) -> Dict:
    """``decoder_conf`` of a trained model with the LLM quantized otherwise for decoding:
    ``quantization`` None keeps the training's; ``"none"`` (or False) decodes unquantized; a
    mapping as ``decoder_conf.quantization`` takes. A difference from training is logged: the
    LoRA weights were trained against the other LLM, so hypotheses may differ from the model's
    as trained (measure the WER before relying on it)."""
    conf = dict(decoder_conf)
    if quantization is None:
        return conf
    from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder
    from smop.tasks.config_check import constructor_params

    frozen = conf.get("frozen_dtype", constructor_params(HFCausalLMDecoder)["frozen_dtype"].default)
    trained = parse_quantization(conf.get("quantization"), "decoder_conf.quantization", frozen)
    wanted = None if quantization in ("none", False) else parse_quantization(quantization, "quantization", frozen)
    if wanted != trained:
        logger.warning(
            f"note: decoding with the LLM's linear layers in {describe(wanted, frozen)}; the model was trained "
            f"with them in {describe(trained, frozen)}, so its hypotheses may differ from the trained model's"
        )
    conf["quantization"] = wanted
    return conf


def keep_one_weight_layout(llm) -> int:
    """Keep bitsandbytes from repacking 4-bit weights for its CPU inference kernel; the number of
    Linear4bit layers. On CPUs with AVX512-BF16, bitsandbytes 0.50 repacks a layer's weight at its
    first forward in eval mode without gradients, and from then on computes every forward with
    that kernel: in bfloat16 whatever ``compute_dtype`` says, and without a backward, so after a
    validation pass the LoRA adapters below such a layer got no gradient (found by
    test/smop/decoders/test_quantization.py). One layout gives training, validation and decoding
    the same arithmetic on every CPU."""
    from bitsandbytes.nn import Linear4bit

    layers = [m for m in llm.modules() if isinstance(m, Linear4bit)]
    for m in layers:
        m.support_avx512bf16_for_cpu = False
    return len(layers)
