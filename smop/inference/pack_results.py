"""The results a pack reports, recorded so that anyone can check them (``smop.bin.verify_model``).

For each scored set of the packed decoding: what the set was (``smop.data.fingerprint``: size,
digests of its text, media list and noise), the data dir and input tables it was decoded from, its
sclite error count, and its hypotheses (``hypotheses/<set>.txt`` in the pack); for all of them the
settings, seed and order they were decoded with. ``meta.yaml`` holds this under ``results``; the
model card shows it.
"""

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

from smop.data.errors import DataError
from smop.data.fingerprint import SetFingerprint
from smop.experiment import Decoding, ExperimentError, local_path
from smop.inference import pack_layout
from smop.inference.settings import DecodeSettings

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SetResult:
    name: str
    data_dir: str  # as the decoding recorded it (relative paths: to the recipe directory)
    media: List[str]  # the input tables read (wav.scp, video.scp)
    fingerprint: SetFingerprint
    errors: int  # sclite's substitutions + deletions + insertions
    hypotheses: Optional[str] = None  # the pack's file of the scored hypotheses

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(self.fingerprint.words, 1)

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["fingerprint"] = self.fingerprint.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "SetResult":
        return cls(**{**values, "fingerprint": SetFingerprint.from_dict(values["fingerprint"])})


@dataclasses.dataclass(frozen=True)
class PackResults:
    settings: DecodeSettings  # what the sets were decoded with (decode.yaml may differ)
    seed: int
    sort_by_length: bool
    sets: List[SetResult]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "seed": self.seed,
            "sort_by_length": self.sort_by_length,
            "sets": [s.to_dict() for s in self.sets],
        }

    @classmethod
    def from_meta(cls, meta: Dict[str, Any], source: str) -> Optional["PackResults"]:
        """The results recorded in a pack's meta.yaml (None: it records none)."""
        values = meta.get("results")
        if not values:
            return None
        try:
            return cls(
                settings=DecodeSettings.from_dict(values["settings"], f"{source}: results.settings"),
                seed=int(values["seed"]),
                sort_by_length=bool(values["sort_by_length"]),
                sets=[SetResult.from_dict(s) for s in values["sets"]],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise pack_layout.PackError(f"{source}: its results record is damaged ({type(e).__name__}: {e})") from e


def record_results(decoding: Decoding, root: Path, staging: Path) -> Optional[PackResults]:
    """The results of ``decoding`` (its scored sets, their data dirs read under ``root``), their
    hypotheses copied into the pack being written in ``staging``; None when nothing was scored."""
    settings = decoding.settings()
    scored = decoding.scored_sets()
    if settings is None or not scored:
        return None
    sets, seeds = [], set()
    for s in scored:
        inputs = s.inputs()
        if inputs is None:
            logger.warning(f"{s.dir}: no decoding record, so the pack cannot say what {s.name} was")
            continue
        seeds |= {(r.seed, r.sort_by_length) for r in s.records()}
        data_dir = Path(inputs[0][0]).parent
        media = sorted(Path(path).name for path, _, _ in inputs)
        try:
            fingerprint = SetFingerprint.of(local_path(root, data_dir), media, root)
        except (DataError, OSError) as e:
            logger.warning(f"{s.name}: its data is not recorded in the pack: {e}")
            continue
        counts = s.score()["counts"]
        if int(counts["wrd"]) != fingerprint.words:
            logger.warning(
                f"{s.name}: scored on {counts['wrd']} words, but {data_dir}/text has {fingerprint.words} now; "
                "its data is not recorded in the pack"
            )
            continue
        hypotheses = f"{pack_layout.HYPOTHESES}/{s.name}.txt"
        (staging / pack_layout.HYPOTHESES).mkdir(exist_ok=True)
        shutil.copyfile(s.hypotheses(), staging / hypotheses)
        sets.append(SetResult(s.name, data_dir.as_posix(), media, fingerprint, int(counts["err"]), hypotheses))
    if len(seeds) > 1:
        raise ExperimentError(f"{decoding.dir}: the sets were decoded with different seeds or orders {sorted(seeds)}")
    seed, sort_by_length = seeds.pop() if seeds else (0, True)
    return PackResults(settings, seed, sort_by_length, sets) if sets else None
