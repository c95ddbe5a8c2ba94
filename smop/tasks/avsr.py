"""SmopAVSRTask: ESPnet task for LLM-based ASR / VSR / AVSR with a sparse mixture of projectors."""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from espnet2.tasks.abs_task import AbsTask
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from typeguard import typechecked

from smop.compressors.abs_compressor import AbsCompressor
from smop.compressors.avg_pool_compressor import AvgPoolCompressor
from smop.compressors.stack_compressor import StackCompressor
from smop.data.collate import PadCollate
from smop.data.datadir import DataDirError, check_inputs_agree
from smop.data.inputs import DEFAULT_MODALITY, MODALITIES
from smop.data.loaders import register_data_types
from smop.data.preprocessor import SmopPreprocessor
from smop.decoders import quantization as quant
from smop.decoders.abs_decoder import AbsDecoder, TextEncoder
from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder
from smop.encoders.abs_audio_encoder import AbsAudioEncoder
from smop.encoders.abs_video_encoder import AbsVideoEncoder
from smop.encoders.avhubert_encoder import AVHubertVideoEncoder
from smop.encoders.whisper_encoder import WhisperAudioEncoder
from smop.experiment import CONFIG
from smop.models import elastic
from smop.models.smop_avsr_model import RATE_PAIR_TRAINING, SmopAVSRModel
from smop.projectors.abs_projector import AbsProjector
from smop.projectors.dense_projector import LinearProjector, MLPProjector
from smop.projectors.per_rate_projector import PerRateProjector
from smop.projectors.smop_projector import SmopProjector
from smop.tasks.config_check import ConfigError, check_config, required_keys
from smop.tasks.trainer import SmopTrainer, weights_only_torch_load
from smop.utils.checkpoint import CheckpointError, load_model_state, one_line

logger = logging.getLogger(__name__)

register_data_types()

# --audio_encoder, --audio_encoder_conf
audio_encoder_choices = ClassChoices(
    "audio_encoder", classes=dict(whisper=WhisperAudioEncoder), type_check=AbsAudioEncoder, default="whisper"
)
# --video_encoder, --video_encoder_conf
video_encoder_choices = ClassChoices(
    "video_encoder", classes=dict(avhubert=AVHubertVideoEncoder), type_check=AbsVideoEncoder, default="avhubert"
)
_compressors = dict(avg_pool=AvgPoolCompressor, stack=StackCompressor)
# --audio_compressor, --audio_compressor_conf
audio_compressor_choices = ClassChoices(
    "audio_compressor", classes=_compressors, type_check=AbsCompressor, default="avg_pool"
)
# --video_compressor, --video_compressor_conf
video_compressor_choices = ClassChoices(
    "video_compressor", classes=_compressors, type_check=AbsCompressor, default="avg_pool"
)
# --projector, --projector_conf
projector_choices = ClassChoices(
    "projector",
    classes=dict(linear=LinearProjector, mlp=MLPProjector, smop=SmopProjector),
    type_check=AbsProjector,
    default="smop",
)
# --decoder, --decoder_conf
decoder_choices = ClassChoices(
    "decoder", classes=dict(hf_causal_lm=HFCausalLMDecoder), type_check=AbsDecoder, default="hf_causal_lm"
)
# --model, --model_conf
model_choices = ClassChoices(
    "model", classes=dict(smop_avsr=SmopAVSRModel), type_check=AbsESPnetModel, default="smop_avsr"
)
# --preprocessor, --preprocessor_conf
preprocessor_choices = ClassChoices("preprocessor", classes=dict(smop=SmopPreprocessor), default="smop")

# Constructor arguments that build_model / build_preprocess_fn pass from the neighbouring
# components; every other argument comes from the component's *_conf.
TASK_SUPPLIED = {
    "audio_compressor": ("input_size",),
    "video_compressor": ("input_size",),
    "projector": ("input_sizes", "output_size"),
    "decoder": ("input_modalities",),
    "model": (
        "modality",
        "audio_encoder",
        "video_encoder",
        "audio_compressor",
        "video_compressor",
        "projector",
        "decoder",
    ),
    "preprocessor": ("train", "tokenize"),
}


def component_used(name: str, modalities) -> bool:
    """Whether the component ``name`` is built for these modalities (audio_* parts for audio only, ...)."""
    kind = name.split("_")[0]
    return kind not in ("audio", "video") or kind in modalities


def with_default_rate(modality: str, conf: Optional[dict]) -> dict:
    """A copy of a compressor conf holding the task's default rate where it sets neither ``rate`` nor ``rates``."""
    conf = dict(conf or {})
    if conf.get("rate") is None and conf.get("rates") is None:
        conf["rate"] = elastic.DEFAULT_RATES[modality]
    return conf


def with_default_rates(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` whose compressor confs hold the task's default rate where they set neither."""
    args = argparse.Namespace(**vars(args))
    for m in elastic.DEFAULT_RATES:
        setattr(args, f"{m}_compressor_conf", with_default_rate(m, getattr(args, f"{m}_compressor_conf", None)))
    return args


def elastic_problems(args: argparse.Namespace) -> List[str]:
    """What is wrong with an elastic model's grid (``model_conf``'s modalities, rate pairs and their
    weights against the modality and the compressors' rates), one line each."""
    conf = dict(args.model_conf or {})
    problems = []
    try:
        tasks = elastic.check_tasks(args.modality, conf.get("modalities"))
        elastic.modality_weights(tasks, conf.get("modality_weights"))
    except ValueError as e:
        problems.append(str(e))
    rates = {m: elastic.compressor_rates(m, getattr(args, f"{m}_compressor_conf")) for m in MODALITIES[args.modality]}
    try:
        elastic.pair_weights(elastic.rate_grid(rates), conf.get("rate_pair_weights"))
    except ValueError as e:
        problems.append(str(e))
    training = conf.get("rate_pair_training", "all")
    if training not in RATE_PAIR_TRAINING:
        problems.append(f"model_conf.rate_pair_training: {training!r} is not one of {', '.join(RATE_PAIR_TRAINING)}")
    return problems


class SmopAVSRTask(AbsTask):
    num_optimizers: int = 1

    class_choices_list = [
        audio_encoder_choices,
        video_encoder_choices,
        audio_compressor_choices,
        video_compressor_choices,
        projector_choices,
        decoder_choices,
        model_choices,
        preprocessor_choices,
    ]

    trainer = SmopTrainer

    @classmethod
    def check_args(cls, args: argparse.Namespace, complete: bool = True) -> None:
        """Raise ConfigError naming every bad component, ``*_conf`` key or path (nothing is loaded).
        Called where a config enters: training, loading a trained model, ``--print_config``
        (``complete=False``: the names only, for a template may leave values to fill in)."""
        check_config(
            with_default_rates(args),
            cls.class_choices_list,
            MODALITIES,
            TASK_SUPPLIED,
            component_used,
            complete,
            elastic_problems,
        )

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None, cmd=None):
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        try:
            cls.check_args(args, complete=not args.print_config)
            if not args.print_config:
                for prefix in ("train", "valid"):
                    shapes = getattr(args, f"{prefix}_shape_file")
                    check_inputs_agree(
                        getattr(args, f"{prefix}_data_path_and_name_and_type"), shapes[0] if shapes else None
                    )
        except (ConfigError, DataDirError) as e:
            print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
            sys.exit(2)
        return super().main(args=args)

    @classmethod
    def get_default_config(cls) -> dict:
        # --print_config lists the required constructor arguments too (as null, to be filled in),
        # so that the printed file is a complete template for --config.
        config = super().get_default_config()
        for choices in cls.class_choices_list:
            if config.get(choices.name) is None:
                continue
            conf = config[f"{choices.name}_conf"]
            for key in required_keys(choices.get_class(config[choices.name]), TASK_SUPPLIED.get(choices.name, ())):
                conf.setdefault(key, None)
        for m in elastic.DEFAULT_RATES:
            if config.get(f"{m}_compressor") is not None:
                config[f"{m}_compressor_conf"] = with_default_rate(m, config[f"{m}_compressor_conf"])
        return config

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        # ESPnet reads --init_param files (and, in the trainer, checkpoints) with
        # torch.load(weights_only=False); here every load is weights-only.
        with weights_only_torch_load():
            return super().main_worker(args)

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--modality",
            type=str,
            default=DEFAULT_MODALITY,
            choices=sorted(MODALITIES),
            help="audio: ASR (Whisper only), video: VSR (AV-HuBERT only), audiovisual: AVSR (both)",
        )
        group = parser.add_argument_group(description="Model and preprocessing components")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        # No parser default for the compressors' rate: on the command line a conf merges into the
        # option's default, and a rate there would clash with a given `rates`. with_default_rates
        # supplies it where neither is set (checks, build_model, --print_config).

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        # Waveforms and frames pad with 0 (padded frames are masked everywhere); ids with -1.
        return PadCollate(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    @typechecked
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        preprocessor_class = preprocessor_choices.get_class(args.preprocessor)
        return preprocessor_class(train, cls.build_text_encoder(args).encode, **args.preprocessor_conf)

    @classmethod
    def build_text_encoder(cls, args: argparse.Namespace) -> TextEncoder:
        """Transcript -> token ids, as the configured decoder tokenizes (no model is built)."""
        return decoder_choices.get_class(args.decoder).text_encoder(**args.decoder_conf)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        # speech and video depend on --modality, which this classmethod cannot see; the model
        # checks them with a message naming the missing data.
        return () if inference else ("text",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech", "video", "text") if inference else ("speech", "video")

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> SmopAVSRModel:
        # The config was checked where it entered (main, build_trained_model); a direct call with a
        # bad one fails in the component that cannot take it.
        args = with_default_rates(args)
        modalities = MODALITIES[args.modality]
        parts: Dict[str, torch.nn.Module] = {}

        # 1. Encoders: only those the modality uses.
        if "audio" in modalities:
            parts["audio_encoder"] = audio_encoder_choices.get_class(args.audio_encoder)(**args.audio_encoder_conf)
        if "video" in modalities:
            parts["video_encoder"] = video_encoder_choices.get_class(args.video_encoder)(**args.video_encoder_conf)

        # 2. Frame compression per modality (at one rate, or an elastic model's several).
        for m in modalities:
            choices = audio_compressor_choices if m == "audio" else video_compressor_choices
            compressor = choices.get_class(getattr(args, f"{m}_compressor"))(
                input_size=parts[f"{m}_encoder"].output_size(), **getattr(args, f"{m}_compressor_conf")
            )
            parts[f"{m}_compressor"] = compressor

        # 3. LLM decoder (frozen, LoRA).
        decoder = decoder_choices.get_class(args.decoder)(input_modalities=list(modalities), **args.decoder_conf)

        # 4. Projector into the LLM's embedding space: one that every rate pair shares, or one per pair.
        projector = cls._build_projector(args, {m: parts[f"{m}_compressor"] for m in modalities}, decoder.embed_size())
        # Without it DDP fails at the first step in which an expert gets no token on some rank.
        if (
            getattr(args, "distributed", False)
            and not args.unused_parameters
            and projector.may_leave_parameters_unused()
        ):
            raise ValueError(
                f"projector {args.projector} ({args.projector_conf}) routes each token to some experts only, so an "
                "expert that gets no token in a step has no gradient: distributed training needs "
                "--unused_parameters true (unused_parameters: true in the training config)"
            )
        tasks = (args.model_conf or {}).get("modalities") or [args.modality]
        if getattr(args, "distributed", False) and not args.unused_parameters and len(tasks) > 1:
            raise ValueError(
                f"model_conf.modalities {list(tasks)}: a batch whose utterances all read one modality leaves the "
                "other's projector and markers without a gradient: distributed training needs "
                "--unused_parameters true (unused_parameters: true in the training config)"
            )

        # 5. The model.
        model = model_choices.get_class(args.model)(
            modality=args.modality,
            audio_encoder=parts.get("audio_encoder"),
            video_encoder=parts.get("video_encoder"),
            audio_compressor=parts.get("audio_compressor"),
            video_compressor=parts.get("video_compressor"),
            projector=projector,
            decoder=decoder,
            **args.model_conf,
        )

        # 6. Report what trains (the trainer also writes this summary to the experiment's model_summary.yaml).
        summary = model.summary()
        for name, part in summary["parts"].items():
            logger.info(f"{name}: {part['trainable']:,} trainable / {part['total']:,} parameters")
        logger.info(f"model: {summary['trainable']:,} trainable / {summary['total']:,} parameters")
        return model

    @classmethod
    def _build_projector(cls, args: argparse.Namespace, compressors: Dict[str, AbsCompressor], output_size: int):
        def build(rates):
            sizes = {m: c.output_size(rates[m]) for m, c in compressors.items()}
            return projector_choices.get_class(args.projector)(
                input_sizes=sizes, output_size=output_size, **args.projector_conf
            )

        grid = {elastic.pair_name(p): p for p in elastic.rate_grid({m: c.rates for m, c in compressors.items()})}
        if (args.model_conf or {}).get("projector_per_rate", False):
            return PerRateProjector(list(grid), lambda name: build(grid[name]))
        sizes = {name: {m: c.output_size(p[m]) for m, c in compressors.items()} for name, p in grid.items()}
        if len({tuple(v.items()) for v in sizes.values()}) > 1:
            raise ValueError(
                f"the rate pairs give the projector inputs of different sizes ({sizes}): a projector shared "
                "across rates needs avg_pool compression, or set model_conf.projector_per_rate: true"
            )
        return build(next(iter(grid.values())))

    @classmethod
    @typechecked
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
        quantization: Any = None,
    ) -> Tuple[SmopAVSRModel, argparse.Namespace]:
        """Rebuild pretrained parts from their sources, then overlay the trained weights.

        Unlike AbsTask's version, the checkpoint is read with ``weights_only=True`` (no pickle
        code runs) and must match the trainable part of the model exactly. ``quantization``: see
        :meth:`build_trained_model`.
        """
        import yaml

        if config_file is None:
            if model_file is None:
                raise ValueError("give config_file or model_file")
            config_file = Path(model_file).parent / CONFIG  # beside the checkpoints, as ESPnet writes it
        with open(config_file, encoding="utf-8") as f:
            args = argparse.Namespace(**yaml.safe_load(f))
        return cls.build_trained_model(args, model_file, device, quantization)

    @classmethod
    def build_trained_model(
        cls,
        args: argparse.Namespace,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
        quantization: Any = None,
    ) -> Tuple[SmopAVSRModel, argparse.Namespace]:
        """``build_model`` from a config, then the trained weights of ``model_file`` (``.pth`` or
        ``.safetensors``, read without pickle) over it. ``quantization`` decodes with the LLM
        quantized otherwise than in training (None: as trained; ``"none"``: unquantized; a
        ``decoder_conf.quantization`` mapping; smop.decoders.quantization.override); the returned
        config says what was built. Checkpoints hold no LLM weight, so either way they load."""
        state = None if model_file is None else load_model_state(model_file)  # a bad path fails before the build
        if quantization is not None:
            args = argparse.Namespace(**vars(args))
            args.decoder_conf = quant.override(args.decoder_conf or {}, quantization)
        cls.check_args(args)  # a trained model's config enters here (decoding, packs)
        model = cls.build_model(args)
        if state is not None:
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as e:  # another model's weights, or this model's config edited
                raise CheckpointError(
                    f"{model_file}: these weights do not fit the model its config builds ({one_line(e)})"
                ) from None
        model.to(device)
        return model, args
