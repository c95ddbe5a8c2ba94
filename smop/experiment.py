"""The experiment folder that training, decoding and scoring leave (ESPnet's ``exp/<tag>/``): its file
names and typed readers, the counterpart of ``smop.inference.pack_layout`` for packs.

    config.yaml                 the training config (ESPnet writes it)
    model_summary.yaml          the model as built (SmopAVSRModel.summary(): parts, compressors,
                                projector, decoder), written when training starts
    <checkpoint>.pth            trained weights (valid.loss.ave.pth, <N>epoch.pth, ...)
    images/<stat>.png           training curves (ESPnet)
    expert_usage.{json,png}     routing counts over the clean test sets, and their plot
    decode_<config>_<model>/    a decoding (recipe stage 4)
      <set>/                    a test set; a noisy copy of <clean> is <clean>_snr<dB>
        decode_config.yaml      DecodeRecord: what decoded it (each job's, under logdir/output.<N>)
        generation_config.yaml  the search settings transformers got
        1best_recog/{text,score}, expert_usage.json   avsr_inference's outputs
        text, score             the jobs' outputs merged (merge_decodes)
        score_wer/wer.json      sclite's counts and percentages (score_wer)
"""

import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from smop.data.datadir import read_table
from smop.data.inputs import INPUTS, MODALITIES, VIDEO_FPS, modality_of
from smop.data.mouth_roi import CROP_SETTINGS, MouthCropSettings
from smop.inference.settings import DecodeSettings
from smop.models.elastic import DEFAULT_CELL, pair_label, pair_name, tokens_per_second
from smop.utils.io import atomic_write

CONFIG = "config.yaml"
MODEL_SUMMARY = "model_summary.yaml"
IMAGES = "images"
EXPERT_USAGE = "expert_usage.json"
EXPERT_USAGE_PLOT = "expert_usage.png"
DECODE_RECORD = "decode_config.yaml"
GENERATION = "generation_config.yaml"
HYPOTHESES = "1best_recog"  # holds text and score
SCORES = "score_wer"  # holds wer.json and sclite's report
WER = "wer.json"

logger = logging.getLogger(__name__)

NOISY_SET = re.compile(r"^(.*)_snr(-?\d+(?:\.\d+)?)$")  # <clean set>_snr<dB>, as stage 0 names noisy copies
# exp/<config>_seed<N>: a run of <config> with another seed than the config's (the recipe's --seeds)
SEED_RUN = re.compile(r"^(.*)_seed(\d+)$")

Usage = Dict[str, Dict[str, List[float]]]  # modality -> "top<r>" -> tokens per expert


class ExperimentError(ValueError):
    pass


def snr_of(name: str) -> str:
    """The SNR (dB) of a noisy set's name, "clean" for another set."""
    m = NOISY_SET.match(name)
    return m.group(2) if m else "clean"


def is_noisy(name: str) -> bool:
    return NOISY_SET.match(name) is not None


def set_order(name: str) -> tuple:
    """Sort key of set names: each clean set, then its noisy copies from the lowest SNR up."""
    m = NOISY_SET.match(name)
    return (m.group(1), 1, float(m.group(2))) if m else (name, 0, 0.0)


def seed_run_dir(exp_root: Path, tag: str, seed: int, own_seed: int) -> Path:
    """Where the run of config ``tag`` with ``seed`` lives: the config's own folder for its own seed (so
    that a run without --seeds is one of them), ``<tag>_seed<N>`` for the others."""
    return Path(exp_root) / (tag if seed == own_seed else f"{tag}_seed{seed}")


def seed_group(name: str) -> str:
    """The experiment a run's folder name belongs to: ``train_dedr_seed2`` -> ``train_dedr``."""
    m = SEED_RUN.match(name)
    return m.group(1) if m else name


def seed_spread_table(runs: Mapping[str, Mapping[str, float]], sets: Sequence[str]) -> List[str]:
    """Markdown rows of the WER (%) over the seed runs of each experiment: mean [min, max] per set
    (and how many runs scored it, when not all did). ``runs``: WER by set for each run folder's name
    (``train_dedr``, ``train_dedr_seed1``, ...)."""
    groups: Dict[str, List[Mapping[str, float]]] = {}
    for name, wers in runs.items():
        groups.setdefault(seed_group(name), []).append(wers)
    lines = ["|experiment|seeds|" + "|".join(sets) + "|", "|---|---|" + "---|" * len(sets)]
    for name, group in groups.items():
        cells = []
        for s in sets:
            values = [w[s] for w in group if s in w]
            if not values:
                cells.append("-")
                continue
            mean = sum(values) / len(values)
            fewer = "" if len(values) == len(group) else f" ({len(values)} of {len(group)} runs)"
            cells.append(f"{mean:.1f} [{min(values):.1f}, {max(values):.1f}]{fewer}")
        lines.append(f"|{name}|{len(group)}|" + "|".join(cells) + "|")
    return lines


def cell_tag(decode_tag: str, suffix: str) -> str:
    """The decoding dir of a cell (avsr.sh's ``cell_dir``)."""
    return decode_tag if suffix == DEFAULT_CELL else f"{decode_tag}_{suffix}"


def grid_wer_table(
    cells: Sequence[Tuple[str, Mapping[str, int], Mapping[str, float]]],
    sets: Sequence[str],
    fixed: Mapping[Tuple[str, str], Tuple[str, Mapping[str, float]]],
) -> List[str]:
    """Markdown rows of an elastic model's WER (%) per cell and set, with the LLM tokens per second
    of each cell. ``cells``: (modality, rate pair, WER by set) each; ``fixed``: (modality, pair
    name) -> (name, WER by set) of a fixed-rate model trained for that cell, shown in brackets."""
    lines = [
        "|modality|rates|LLM tokens/s|" + "|".join(sets) + "|fixed-rate model (in brackets)|",
        "|---|---|---|" + "---|" * len(sets) + "---|",
    ]
    for modality, pair, wers in cells:
        name, other = fixed.get((modality, pair_name(pair)), ("-", {}))
        values = [
            "-" if s not in wers else f"{wers[s]:.1f}" + (f" ({other[s]:.1f})" if s in other else "") for s in sets
        ]
        tokens = sum(tokens_per_second(pair).values())
        lines.append(f"|{modality}|{pair_label(pair)}|{tokens:g}|" + "|".join(values) + f"|{name}|")
    return lines


def usage_counts(counts: Mapping[str, Any]) -> Usage:
    """A projector's routing counts (``ProjectorOutput.usage``: modality -> (top_k, E) tensor of
    tokens whose r-th choice is each expert) as expert_usage.json holds them."""
    return {m: {f"top{r + 1}": [int(c) for c in row] for r, row in enumerate(t.tolist())} for m, t in counts.items()}


def add_usage(total: Usage, usage: Mapping[str, Mapping[str, Sequence[float]]]) -> Usage:
    """``usage`` (expert_usage.json's data) added into ``total``."""
    for m, ranks in usage.items():
        for rank, counts in ranks.items():
            acc = total.setdefault(m, {}).setdefault(rank, [0.0] * len(counts))
            total[m][rank] = [a + c for a, c in zip(acc, counts)]
    return total


def describe_projector(name: str, summary: Mapping[str, Any], short: bool = True) -> str:
    """The projector as built (its summary in model_summary.yaml; ``name``: the config's choice),
    short for RESULTS.md ("smop DEDR (E=4, k=2)") or in words for model cards."""
    if summary.get("layout") is None:  # a dense projector
        return name if short else f"{name} projector"
    layout = str(summary["layout"]).upper()
    if short:
        return f"{name} {layout} (E={summary['num_experts']}, k={summary['top_k']})"
    experts, top_k = summary["num_experts"], summary["top_k"]
    return f"sparse mixture of projectors, {layout} layout, {experts} experts, top-{top_k} routing"


@dataclasses.dataclass
class DecodeRecord:
    """What decoded a test set (one ``avsr_inference`` job): written beside its outputs as
    ``decode_config.yaml`` and read back by packing and reports."""

    output_dir: str
    data: List[Tuple[str, str, str]]  # --data_path_and_name_and_type: (path, name, type)
    train_config: Optional[str]
    model_file: Optional[str]
    settings: DecodeSettings
    key_file: Optional[str] = None
    ngpu: int = 0
    seed: int = 0
    num_workers: int = 1
    sort_by_length: bool = True
    # --quantization: the LLM quantized otherwise than in training (None: as trained)
    quantization: Any = None
    versions: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["data"] = [list(t) for t in self.data]
        values["settings"] = self.settings.to_dict()  # an elastic model's grid cell only where set
        return values

    def write(self) -> Path:
        path = Path(self.output_dir) / DECODE_RECORD
        with atomic_write(path) as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
        return path

    @classmethod
    def read(cls, path: Union[str, Path]) -> "DecodeRecord":
        """A record as written, or as an older smop wrote it (``{"args": <the options>}``)."""
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ExperimentError(f"{path}: cannot read the decoding record: {e}") from e
        if "args" in values:
            args = values["args"]
            values = {k: args.get(k) for k in ("output_dir", "train_config", "model_file", "key_file")}
            values.update(
                data=args.get("data_path_and_name_and_type") or [],
                settings=args,
                **{k: args[k] for k in ("ngpu", "seed", "num_workers", "sort_by_length") if k in args},
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown or not isinstance(values.get("settings"), dict):
            raise ExperimentError(f"{path}: not a decoding record (keys {sorted(values)})")
        values["settings"] = DecodeSettings.from_dict(values["settings"], f"{path}: settings")
        values["data"] = [tuple(t) for t in values.get("data") or []]
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ScoredSet:
    """A test set of a decoding with its sclite scores (``score_wer/wer.json``)."""

    name: str
    dir: Path

    @property
    def snr(self) -> str:
        return snr_of(self.name)

    def score(self) -> dict:
        return json.loads((self.dir / SCORES / WER).read_text())

    @property
    def utterances(self) -> int:
        return int(self.score()["counts"]["snt"])

    @property
    def words(self) -> int:
        return int(self.score()["counts"]["wrd"])

    def hypotheses(self) -> Path:
        """The hypotheses that were scored: the jobs' merged ``text``, or one job's ``1best_recog/text``."""
        merged = self.dir / "text"
        return merged if merged.is_file() else self.dir / HYPOTHESES / "text"

    def records(self) -> List[DecodeRecord]:
        """The records of the jobs that decoded this set."""
        return [DecodeRecord.read(f) for f in sorted(self.dir.glob(f"**/{DECODE_RECORD}"))]

    def inputs(self) -> Optional[List[Tuple[str, str, str]]]:
        """The inputs (path, name, type) the set was decoded from (None: no record); jobs that
        read different inputs are an error."""
        found = {tuple(r.data) for r in self.records()}
        if len(found) > 1:
            raise ExperimentError(f"{self.dir}: its decoding jobs read different inputs {sorted(found)}")
        return list(found.pop()) if found else None


@dataclasses.dataclass(frozen=True)
class Decoding:
    """One decoding of an experiment (``decode_<config>_<model>/``)."""

    dir: Path

    @property
    def tag(self) -> str:
        return self.dir.name

    def records(self) -> Dict[Path, DecodeRecord]:
        """Each job's record, by file."""
        return {f: DecodeRecord.read(f) for f in sorted(self.dir.glob(f"**/{DECODE_RECORD}"))}

    def settings(self) -> Optional[DecodeSettings]:
        """The settings every set was decoded with (None: no record); sets decoded with different
        settings are an error."""
        found: Dict[DecodeSettings, Path] = {}
        for f, record in self.records().items():
            found.setdefault(record.settings, f)
        if len(found) > 1:
            raise ExperimentError(
                f"{self.dir}: the sets were decoded with different settings "
                f"({', '.join(str(f) for f in found.values())}); choose with --decode_config"
            )
        return next(iter(found), None)

    def checkpoints(self) -> List[str]:
        """The checkpoints the jobs loaded (their model_file), as recorded."""
        return sorted({str(r.model_file) for r in self.records().values() if r.model_file})

    def scored_sets(self) -> List[ScoredSet]:
        """The scored sets, each clean set before its noisy copies from the lowest SNR up."""
        names = [d.parent.parent.name for d in self.dir.glob(f"*/{SCORES}/{WER}")]
        return [ScoredSet(n, self.dir / n) for n in sorted(names, key=set_order)]

    def expert_usage(self, sets: Optional[Sequence[str]] = None) -> Tuple[Usage, List[str]]:
        """Routing counts summed over ``sets`` (default: every clean set), and the sets read."""
        files = [
            f
            for f in sorted(self.dir.glob(f"*/{EXPERT_USAGE}"))
            if (f.parent.name in sets if sets else not is_noisy(f.parent.name))
        ]
        usage: Usage = {}
        for f in files:
            add_usage(usage, json.loads(f.read_text()))
        return usage, [f.parent.name for f in files]

    def wer_table(self, sets: Sequence[str]) -> Tuple[List[str], Dict[str, float]]:
        """The markdown WER table of ``sets`` (a row of dashes for a set not scored), and the WER
        (%) by scored set."""
        lines = ["|dataset|SNR (dB)|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|", "|---|---|---|---|---|---|---|---|---|---|"]
        errors = {}
        for s in sets:
            scored = ScoredSet(s, self.dir / s)
            if not (scored.dir / SCORES / WER).exists():
                lines.append(f"|{s}|{scored.snr}|-|-|-|-|-|-|-|-|")
                continue
            r = scored.score()
            c, pc = r["counts"], r["percent"]
            lines.append(
                f"|{s}|{scored.snr}|{c['snt']}|{c['wrd']}|{pc['corr']:.1f}|{pc['sub']:.1f}|{pc['del']:.1f}|"
                f"{pc['ins']:.1f}|{pc['err']:.1f}|{pc['s_err']:.1f}|"
            )
            errors[s] = pc["err"]
        return lines, errors


class ExperimentDir:
    """A training directory and what was decoded and scored in it."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def config(self) -> dict:
        if not (self.path / CONFIG).is_file():
            raise ExperimentError(f"{self.path}: no {CONFIG} (not a training directory)")
        return yaml.safe_load((self.path / CONFIG).read_text()) or {}

    def summary(self) -> dict:
        """What training recorded of the model it built."""
        path = self.path / MODEL_SUMMARY
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: training writes it when it starts (run stage 3 for {self.path})"
            )
        return yaml.safe_load(path.read_text())

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        with atomic_write(self.path / MODEL_SUMMARY) as f:
            yaml.safe_dump(dict(summary), f, sort_keys=False)

    def describe(self) -> str:
        """One line on what was trained, from config.yaml and model_summary.yaml."""
        if not (self.path / CONFIG).exists():
            return "not trained"
        cfg, summary = self.config(), self.summary()
        projector = describe_projector(cfg["projector"], summary["projector"])
        return (
            f"modality {summary['modality']}, projector {projector}, max_epoch {cfg['max_epoch']}, "
            f"{summary['trainable']:,} trainable of {summary['total']:,} parameters"
        )

    def decoding(self, tag: str) -> Decoding:
        return Decoding(self.path / tag)

    def decodings(self) -> List[Decoding]:
        return [Decoding(d) for d in sorted(self.path.glob("decode_*")) if d.is_dir()]

    def decoding_of(self, weights_file: Path, root: Path, tag: Optional[str] = None) -> Optional[Decoding]:
        """The decoding of the checkpoint ``weights_file``, never another's: ``tag`` if given (an error
        if it decoded another checkpoint), else the one decoding of it (None if there is none).
        Recorded checkpoint paths are relative to ``root`` (the recipe directory)."""

        def of_this(decoding):
            recorded = decoding.checkpoints()
            return all(_same_checkpoint(r, weights_file, root) for r in recorded), recorded

        if tag:
            decoding = self.decoding(tag)
            if not decoding.dir.is_dir():
                raise ExperimentError(f"{decoding.dir}: no such decoding directory")
            ok, recorded = of_this(decoding)
            if not ok:
                raise ExperimentError(
                    f"{decoding.dir} decoded {', '.join(recorded)}, not {weights_file}: its results "
                    f"are not this checkpoint's. Decode {weights_file.name} first (run.sh --stage 4 "
                    f"--inference_model {weights_file.name}) and pack with its decoding"
                )
            return decoding
        every = self.decodings()
        mine = [d for d in every if of_this(d)[0]]
        if len(mine) > 1:
            raise ExperimentError(
                f"{self.path} holds several decodings of {weights_file.name} {[d.tag for d in mine]}: "
                "choose one with --decode_tag"
            )
        if not mine and every:
            logger.info(
                f"{self.path}: no decoding of {weights_file.name} (only of other checkpoints: "
                f"{', '.join(d.tag for d in every)})"
            )
        return mine[0] if mine else None

    def training_data(self, root: Path) -> Dict[str, dict]:
        """The training and validation data dirs (the folders of their inputs, relative to ``root``)
        with their sizes."""
        config = self.config()
        sets = {}
        for which in ("train", "valid"):
            entries = config.get(f"{which}_data_path_and_name_and_type") or []
            if not entries:
                continue
            by_name = {name: path for path, name, _ in entries}
            path = by_name.get(INPUTS["video"].name) or by_name.get(INPUTS["audio"].name) or entries[0][0]
            folder = local_path(root, path).parent
            info = {"dir": Path(path).parent.as_posix(), "folder": folder}
            if (folder / "text").is_file():
                info["utterances"] = len(read_table(folder / "text"))
            if (folder / "utt2num_frames").is_file():
                frames = sum(int(n) for _, n in read_table(folder / "utt2num_frames"))
                info["hours"] = frames / VIDEO_FPS / 3600
            sets[which] = info
        return sets

    def mouth_crop(self, data: Mapping[str, dict]) -> Optional[MouthCropSettings]:
        """The crop settings recorded with the training data (``data``: :meth:`training_data`);
        None for a model without video, or when the data has none (the caller says so)."""
        if "video" not in MODALITIES[modality_of(self.config())]:
            return None
        folder = data.get("train", {}).get("folder")
        if folder is None or not (folder / CROP_SETTINGS).is_file():
            return None
        return MouthCropSettings.read(folder / CROP_SETTINGS)


def local_path(root: Path, value) -> Path:
    """A path of a config or record: relative ones are relative to ``root`` (the recipe directory)."""
    path = Path(value)
    return path if path.is_absolute() else root / path


def _same_checkpoint(recorded: str, weights_file: Path, root: Path) -> bool:
    path = local_path(root, recorded)
    if path.exists() and weights_file.exists():
        return os.path.samefile(path, weights_file)  # valid.loss.ave.pth links to valid.loss.ave_<N>best.pth
    return path.name == weights_file.name
