"""The grid an elastic model trains and decodes on: its rate pairs and its modalities (issue 21).

A rate pair gives each input modality the compression rate of one forward pass (``{"audio": 4,
"video": 2}``, named ``a4_v2``); the grid is every combination of the compressors' rates. A model
with one rate per modality and one modality has a grid of one cell and trains as before.
"""

import itertools
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from smop.data.inputs import MODALITIES, VIDEO_FPS, modality_of

# Frames per LLM token by default: Whisper 50 Hz / 4 and AV-HuBERT 25 Hz / 2, both 12.5 Hz. The one
# default of the compressors' rate (the task gives it them).
DEFAULT_RATES = {"audio": 4, "video": 2}
# Encoder states per second, which a rate divides into LLM tokens per second: Whisper's 50 Hz (16 kHz,
# hop 160, then a stride-2 convolution) and AV-HuBERT's one per video frame.
FRAMES_PER_SECOND = {"audio": 50, "video": VIDEO_FPS}

RatePair = Dict[str, int]  # modality -> frames per LLM token
RATE_OPTION = {"audio": "audio_rate", "video": "video_rate"}  # the decoding option of each modality's rate


class GridError(ValueError):
    """A decoding request for a modality or rate the model was not trained for."""


def pair_name(rates: Mapping[str, int]) -> str:
    """``a4_v2``: the name of a rate pair in the training log, the config and decode dirs."""
    return "_".join(f"{m[0]}{rates[m]}" for m in ("audio", "video") if m in rates)


def pair_label(rates: Mapping[str, int]) -> str:
    """``audio 4 / video 2``: a rate pair as reports and the demo page write it."""
    return " / ".join(f"{m} {r}" for m, r in rates.items())


def tokens_per_second(rates: Mapping[str, int]) -> Dict[str, float]:
    """The LLM tokens per second of media each input of the rate pair ``rates`` gives."""
    return {m: FRAMES_PER_SECOND[m] / r for m, r in rates.items()}


def rate_grid(rates: Mapping[str, Sequence[int]]) -> List[RatePair]:
    """Every rate pair of the modalities' rates (audio's first, then video's)."""
    order = [m for m in ("audio", "video") if m in rates]
    return [dict(zip(order, combo)) for combo in itertools.product(*(rates[m] for m in order))]


def _weights(names: Sequence[str], given: Optional[Mapping[str, float]], key: str) -> List[float]:
    """Non-negative weights of ``names`` (1 each unless ``given``), not all zero; ValueError naming ``key``."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"{key}: {unknown} not among the model's {list(names)}")
    weights = [given.get(n, 1.0) for n in names]
    if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{key}: weights must be numbers >= 0, not all 0, got {given}")
    return [float(w) for w in weights]


def pair_weights(grid: Sequence[RatePair], given: Optional[Mapping[str, float]]) -> List[float]:
    return _weights([pair_name(p) for p in grid], given, "model_conf.rate_pair_weights")


def modality_weights(tasks: Sequence[str], given: Optional[Mapping[str, float]]) -> List[float]:
    return _weights(list(tasks), given, "model_conf.modality_weights")


def check_tasks(modality: str, tasks: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The modalities a model of inputs ``modality`` trains (``model_conf.modalities``; default: its own)."""
    if tasks is None:
        return (modality,)
    if isinstance(tasks, str) or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"model_conf.modalities: a list of distinct modalities, got {tasks!r}")
    bad = [t for t in tasks if t not in MODALITIES or not set(MODALITIES[t]) <= set(MODALITIES[modality])]
    if bad:
        raise ValueError(
            f"model_conf.modalities: {bad} cannot be read by a model of modality {modality} "
            f"(it has the inputs {list(MODALITIES[modality])}); use modality: audiovisual for all three"
        )
    return tuple(tasks)


def decoding_choice(
    tasks: Sequence[str],
    rates: Mapping[str, Sequence[int]],
    modality: Optional[str] = None,
    audio_rate: Optional[int] = None,
    video_rate: Optional[int] = None,
    default_modality: Optional[str] = None,
) -> Tuple[str, RatePair]:
    """The modality and rate pair to decode with (None: ``default_modality``, every input the
    model has, if trained, else its first; each input's first rate), or a one-line
    GridError naming the option and listing what the model was trained for."""
    if modality is None:
        modality = default_modality if default_modality in tasks else tasks[0]
    if modality not in tasks:
        raise GridError(f"modality {modality!r}: this model was trained for {', '.join(tasks)} only")
    chosen = {}
    for m, rate in (("audio", audio_rate), ("video", video_rate)):
        if rate is None:
            if m in rates and m in MODALITIES[modality]:
                chosen[m] = rates[m][0]
            continue
        if m not in rates:
            raise GridError(f"{RATE_OPTION[m]} {rate}: this model has no {m} input")
        if rate not in rates[m]:
            raise GridError(
                f"{RATE_OPTION[m]} {rate}: this model was trained at {m} rates {', '.join(map(str, rates[m]))} only"
            )
        if m in MODALITIES[modality]:
            chosen[m] = rate
    return modality, chosen


def compressor_rates(modality: str, conf: Optional[Mapping]) -> List[int]:
    """The rates a compressor conf sets: ``rates``, else [``rate``], else [the default rate]; a key
    set to null counts as unset (``--print_config`` writes both keys, one of them null)."""
    conf = conf or {}
    if conf.get("rates") is not None:
        return list(conf["rates"])
    return [conf["rate"] if conf.get("rate") is not None else DEFAULT_RATES[modality]]


def config_grid(config: Mapping) -> Dict[str, object]:
    """What a training config trains: its modalities and each input's rates (as ``SmopAVSRModel.grid``),
    read from the config alone (packs record it in meta.yaml)."""
    modality = modality_of(config)
    model_conf = config.get("model_conf") or {}
    rates = {}
    for m in MODALITIES[modality]:
        rates[m] = compressor_rates(m, config.get(f"{m}_compressor_conf"))
    return {"modalities": list(model_conf.get("modalities") or [modality]), "rates": rates}


def grid_cells(grid: Mapping) -> List[Tuple[str, RatePair]]:
    """Every (modality, rate pair) of a grid, the rate pair holding the rates that modality reads."""
    cells = []
    for modality in grid["modalities"]:
        rates = {m: r for m, r in grid["rates"].items() if m in MODALITIES[modality]}
        cells += [(modality, pair) for pair in rate_grid(rates)]
    return cells


DEFAULT_CELL = "-"  # the dir suffix of a model's default cell, which decodes into the plain decoding dir


def decoded_cells(config: Mapping) -> List[Tuple[str, str, Dict[str, int]]]:
    """(decoding dir suffix, modality, rate pair) of every cell of a training config's grid, as the
    recipes decode them: the default cell (its modality at each input's first rate) first, with
    suffix DEFAULT_CELL; the others ``<modality>_<pair name>``, e.g. ``audio_a8``."""
    grid = config_grid(config)
    default = (modality_of(config), {m: r[0] for m, r in grid["rates"].items()})
    cells = [(DEFAULT_CELL, *default)]
    for modality, pair in grid_cells(grid):
        if (modality, pair) != default:
            cells.append((f"{modality}_{pair_name(pair)}", modality, pair))
    return cells
