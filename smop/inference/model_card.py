"""The model card (README.md) of a packed model, in the Hugging Face model-card format."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import yaml

from smop.data.inputs import INPUTS, MODALITIES, modality_of
from smop.data.mouth_roi import MouthCropSettings
from smop.decoders.quantization import describe as describe_quantization
from smop.experiment import describe_projector
from smop.inference.pack_results import PackResults
from smop.inference.pretrained import PretrainedPart
from smop.inference.settings import DecodeSettings
from smop.models.elastic import grid_cells

TASKS = {
    "audio": "speech recognition (ASR, audio only)",
    "video": "visual speech recognition (VSR, lip reading)",
    "audiovisual": "audio-visual speech recognition (AVSR)",
}
TAGS = {
    "audio": ["automatic-speech-recognition"],
    "video": ["visual-speech-recognition", "lip-reading"],
    "audiovisual": ["audio-visual-speech-recognition", "automatic-speech-recognition", "lip-reading"],
}
COMPONENTS = {"whisper": "Whisper encoder", "avhubert": "AV-HuBERT encoder", "hf_causal_lm": "causal LLM"}
SLOT_NAMES = {"audio_encoder": "audio encoder", "video_encoder": "video encoder", "decoder": "LLM"}

# The method and the toolkit, as README.md cites them (a test keeps README's block holding these).
CITATION = """@inproceedings{cappellazzo2025smop,
  title     = {Scaling and Enhancing {LLM}-based {AVSR}: A Sparse Mixture of Projectors Approach},
  author    = {Cappellazzo, Umberto and Kim, Minsu and Petridis, Stavros and Falavigna, Daniele and Brutti, Alessio},
  booktitle = {Proc. Interspeech},
  year      = {2025},
  note      = {arXiv:2505.14336}
}
@inproceedings{watanabe2018espnet,
  title     = {{ESPnet}: End-to-End Speech Processing Toolkit},
  author    = {Watanabe, Shinji and Hori, Takaaki and Karita, Shigeki and Hayashi, Tomoki and Nishitoba, Jiro and
               Unno, Yuya and {Enrique Yalta Soplin}, Nelson and Heymann, Jahn and Wiesner, Matthew and Chen, Nanxin and
               Renduchintala, Adithya and Ochiai, Tsubasa},
  booktitle = {Proc. Interspeech},
  year      = {2018}
}"""


@dataclass
class CardInfo:
    name: str
    config: dict
    parts: List[PretrainedPart]
    settings: DecodeSettings
    summary: str = ""
    model: Dict[str, object] = field(default_factory=dict)  # the model as built (model_summary.yaml)
    hub_id: Optional[str] = None
    license: Optional[str] = None
    language: Optional[str] = None
    corpus: Optional[str] = None
    data: Dict[str, dict] = field(default_factory=dict)
    results: List[str] = field(default_factory=list)
    decode_tag: Optional[str] = None
    results_settings: Optional[DecodeSettings] = None
    scored: Optional[PackResults] = None  # what each scored set was
    crop: Optional[MouthCropSettings] = None
    image: Optional[str] = None
    weights_mb: float = 0.0
    checkpoint: str = ""


def pack_license(info: CardInfo) -> str:
    """The licence given, or the parts' common one; "other" when they differ or are unstated."""
    if info.license:
        return info.license
    stated = {p.license for p in info.parts}
    return stated.pop() if len(stated) == 1 and None not in stated else "other"


def _front_matter(info: CardInfo, modality: str) -> str:
    meta = {"license": pack_license(info)}
    if meta["license"] == "other":
        meta["license_name"] = "see-the-licences-of-the-parts"
    if info.language:
        meta["language"] = info.language
    meta.update(
        library_name="smop",
        pipeline_tag="automatic-speech-recognition",
        tags=["smop", "espnet", *TAGS[modality], "mixture-of-experts", "llm"],
    )
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _model_rows(info: CardInfo, modality: str) -> List[str]:
    c = info.config
    refs = {p.slot: p for p in info.parts}

    def source(slot):
        part = refs.get(slot)
        if part is None:
            return ""
        return (
            f"`{part.path}` (in this folder)"
            if part.path
            else f"[`{part.hub_id}`](https://huggingface.co/{part.hub_id})"
        )

    # The parts as training built them (model_summary.yaml), not as the config spelt them: a config
    # may leave the defaults out. A summary from before smop recorded a part's settings lacks them.
    built = info.model
    rows = ["| part | what | trained |", "|---|---|---|"]
    for m in MODALITIES[modality]:
        slot = f"{m}_encoder"
        comp = built.get("compressors", {}).get(m)
        if not comp:
            rate = "rate not recorded"
        else:
            rate = f"rate {comp['rate']}" if "rate" in comp else f"rates {', '.join(map(str, comp['rates']))}"
        rows.append(f"| {m} encoder | {COMPONENTS.get(c.get(slot), c.get(slot))} {source(slot)}, frozen | no |")
        rows.append(f"| {m} compression | {c.get(f'{m}_compressor')}, {rate} | no parameters |")
    rows.append(
        f"| projector | {describe_projector(c.get('projector'), built.get('projector', {}), short=False)} | yes |"
    )
    dec = built.get("decoder")
    if dec is None:
        lora = "; LoRA (settings not recorded)"
    elif dec["lora_r"]:
        targets = dec["lora_target_modules"]
        lora = (
            f"; LoRA r={dec['lora_r']}, alpha={dec['lora_alpha']} on "
            f"{targets if isinstance(targets, str) else ', '.join(targets)}"
        )
    else:
        lora = ""
    if dec and dec.get("quantization"):  # stored unquantized, quantized again at load
        lora = f" (linear layers in {describe_quantization(dec['quantization'], dec['frozen_dtype'])}){lora}"
    rows.append(
        f"| LLM | {COMPONENTS.get(c.get('decoder'), c.get('decoder'))} {source('decoder')}, frozen{lora} "
        "| LoRA and modality markers |"
    )
    return rows


def _data_lines(info: CardInfo, modality: str) -> List[str]:
    lines = []
    corpus = f" of {info.corpus}" if info.corpus else ""
    for which, label in (("train", "training"), ("valid", "validation")):
        d = info.data.get(which)
        if d is None:
            continue
        size = []
        if "utterances" in d:
            size.append(f"{d['utterances']:,} utterances")
        if "hours" in d:
            size.append(f"{d['hours']:.1f} h" if d["hours"] >= 1 else f"{d['hours'] * 60:.1f} min")
        lines.append(f"- {label}: `{d['dir']}`{corpus}" + (f" ({', '.join(size)})" if size else ""))
    lines.append(
        "- inputs: "
        + ", ".join(
            (["16 kHz mono audio"] if modality != "video" else [])
            + (["grey mouth crops at 25 fps"] if modality != "audio" else [])
        )
    )
    if modality != "audio":
        crop = (
            info.crop.describe()
            if info.crop
            else "not recorded with the training data (transcribing video files needs them)"
        )
        side = (info.config.get("preprocessor_conf") or {}).get("crop_size", 88)
        lines.append(f"- mouth crops: {crop}; the model sees their centre {side}x{side} pixels")
    pre = info.config.get("preprocessor_conf") or {}
    aug = []
    if modality != "video" and "noise_snrs" in pre:
        snrs = ", ".join("clean" if s is None else f"{s} dB" for s in pre["noise_snrs"])
        aug.append(f"babble noise, one SNR of {snrs} per utterance")
    if pre.get("modality_dropout"):
        aug.append(f"modality dropout {pre['modality_dropout']}")
    if aug:
        lines.append(f"- augmentation: {'; '.join(aug)}")
    return lines


def _usage(info: CardInfo, modality: str) -> List[str]:
    name = info.hub_id or "path/to/this/folder"
    names = [INPUTS[m].name for m in MODALITIES[modality]]
    values = {"speech": "wave", "video": "mouths"}
    args = ", ".join(f"{n}={values[n]}" for n in names)
    batch = ", ".join(f"{n}=[{values[n]}1, {values[n]}2]" for n in names)
    inputs = []
    if modality != "video":
        inputs.append("`wave`: 16 kHz mono float32 (S,)")
    if modality != "audio":
        if info.crop:
            size = info.crop.roi_resize or info.crop.roi_size
            shape = f"(T, {size}, {size})"
        else:
            shape = "(T, H, W)"
        inputs.append(f"`mouths`: uint8 grey mouth crops {shape} at 25 fps, cropped like the training data")
    lines = [
        "Install smop (in a clone of its repository: `tools/install.sh`), then:",
        "",
        "```python",
        "from smop import Speech2Text",
        "",
        f'speech2text = Speech2Text.from_pretrained("{name}", device="cpu")  # or "cuda"',
        f"hyp = speech2text({args})",
        "print(hyp.text, hyp.score)",
        f"hyps = speech2text({batch})  # a batch: one hypothesis each",
        "```",
        "",
        f"{'; '.join(inputs)}.",
        "",
        "Transcribe media files (mp4, mkv, avi, wav, flac; ffmpeg decodes them):",
        "",
        "```sh",
    ]
    if modality == "audio":
        lines.append(f"smop-transcribe --model {name} talk.wav interview.mp4")
    else:
        lines += [
            f"smop-transcribe --model {name} --landmarks landmarks/ clip1.mp4 clip2.mp4",
            "# landmarks/<clip>.npy: (T, 68, 2) face landmarks per video frame (NaN where no face)",
        ]
    lines += ["smop-transcribe --model ... --output_format json ...   # scores and timings", "```", ""]
    if modality == "audiovisual":
        lines += [
            "An audio-only file is decoded with the video blanked, as modality dropout blanks it in training "
            "(the output says so).",
            "",
        ]
    lines += [
        "Share it (a Hugging Face model repository):",
        "",
        "```sh",
        f"hf upload {info.hub_id or '<you>/' + info.name} path/to/this/folder",
        "```",
        "",
        "A hub id loads from the local Hugging Face cache (`hf download <id>` first); smop never downloads.",
    ]
    return lines


def _grid_lines(info: CardInfo) -> List[str]:
    """An elastic model's grid: every modality and rate pair one checkpoint decodes, and how to choose."""
    grid = info.model.get("elastic")
    if not grid:
        return []
    name = info.hub_id or "path/to/this/folder"
    lines = [
        "",
        "## Modalities and rates",
        "",
        "One checkpoint, trained for every cell below (an elastic model); the first is the default. "
        "A higher rate gives the LLM fewer tokens per second of speech (faster, usually less accurate).",
        "",
        "| modality | audio rate | video rate |",
        "|---|---|---|",
    ]
    for modality, pair in grid_cells(grid):
        lines.append(f"| {modality} | {pair.get('audio', '-')} | {pair.get('video', '-')} |")
    lines += [
        "",
        f'Choose one with `Speech2Text.from_pretrained("{name}", modality="audio", audio_rate=...)`, '
        "`smop-transcribe --modality ... --audio_rate ... --video_rate ...` or the same options of "
        "`smop.bin.avsr_inference`; a cell not listed is refused.",
    ]
    return lines


def _test_data(info: CardInfo) -> List[str]:
    """What each scored set was, so that a user can check they have the same set and reproduce its WER."""
    if not info.scored:
        return []
    name = info.hub_id or "path/to/this/folder"
    lines = [
        "",
        "The test sets, as digests (sha256, in full in `meta.yaml`; the media list is each input table's "
        "utterance ids with their file names), and their hypotheses in `hypotheses/`. "
        f"`python -m smop.bin.verify_model --model {name} --data_dir <data dir>` decodes a set again with "
        "this model and says whether it gives the WER above:",
        "",
        "|dataset|data dir|Snt|Wrd|text|media list|noise|",
        "|---|---|---|---|---|---|---|",
    ]
    for s in info.scored.sets:
        f = s.fingerprint
        lines.append(
            f"|{s.name}|`{s.data_dir}`|{f.utterances}|{f.words}|{f.digest('text')}|{f.digest('media list')}|"
            f"{f.digest('noise')}|"
        )
    return lines


def model_card(info: CardInfo) -> str:
    modality = modality_of(info.config)
    corpus = f", on {info.corpus}" if info.corpus else ""
    lines = [
        _front_matter(info, modality),
        f"# {info.name}: Llama-SMoP {TASKS[modality]}",
        "",
        f"A speech recognizer trained with smop, the ESPnet-style recipe toolkit for LLM-based audio-visual "
        f"speech recognition with a sparse mixture of projectors (Llama-SMoP){corpus}. "
        "Frozen pretrained encoders feed a trained projector into a frozen LLM with LoRA adapters; the LLM writes "
        "the transcript.",
        "",
        "## Model",
        "",
    ]
    lines += _model_rows(info, modality)
    lines += _grid_lines(info)
    lines += [
        "",
        f"- {info.summary}" if info.summary else "",
        f"- `model.safetensors`: the trained weights only ({info.weights_mb:.1f} MB, from `{info.checkpoint}`); "
        "the pretrained parts load from their sources",
        "",
        "## Training data",
        "",
    ]
    lines += _data_lines(info, modality)
    lines += ["", "## Results", ""]
    if info.results:
        shown = info.results_settings or info.settings
        lines += [
            f"WER (%) of `{info.decode_tag}` (sclite), decoded with beam {shown.beam_size}, batch {shown.batch_size}, "
            f"early_stopping {str(shown.early_stopping).lower()}:",
            "",
        ] + info.results
        lines += _test_data(info)
    else:
        lines.append("No scored test set was found when this model was packed.")
    if info.image:
        lines += [
            "",
            "## Expert usage",
            "",
            "Share of tokens each expert receives, as first and second choice:",
            "",
            f"![expert usage]({info.image})",
        ]
    s = info.settings
    lines += ["", "## How to use", ""] + _usage(info, modality)
    lines += [
        "",
        f"Decoding settings (`decode.yaml`): beam {s.beam_size}, batch {s.batch_size}, token budget "
        f"{s.max_new_tokens_min} + {s.max_new_tokens_per_second}/s, early_stopping {str(s.early_stopping).lower()}, "
        f"{s.dtype}; `from_pretrained(..., beam_size=..., batch_size=...)` changes them.",
        "",
    ]
    lines += ["## Licences", "", "| part | source | licence |", "|---|---|---|"]
    for p in info.parts:
        where = f"`{p.path}`" if p.path else f"`{p.hub_id}`" + (f" `{p.filename}`" if p.filename else "")
        lines.append(
            f"| {SLOT_NAMES[p.slot]} | {where} | {p.license or 'not stated by its source: check it before sharing'} |"
        )
    lines.append(f"| trained weights | `model.safetensors` | {pack_license(info)} |")
    if any((p.slot == "video_encoder" and info.config.get("video_encoder") == "avhubert") for p in info.parts):
        lines += ["", "Official AV-HuBERT weights are under the AV-HuBERT licence (non-commercial research use)."]
    lines += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)
