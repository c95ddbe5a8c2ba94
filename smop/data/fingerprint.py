"""What a test set is, in a few numbers: its size and digests of its transcripts, of its list of media
and of the noise mixed into it. A pack records them for each set it reports a WER on, so that
``smop.bin.verify_model`` can tell whether a user's data dir is the set the results were measured on.

The media list is each input table's utterance ids with the *file names* of their media (not the
folders, which differ between machines); a noisy copy (``smop.bin.make_noisy_set``) has the same
media list as its clean set, and differs by its noise (the noise file's digest, the SNR and the seed).
"""

import dataclasses
import hashlib
from pathlib import Path, PurePath
from typing import Any, Dict, List, Optional, Sequence, Union

from smop.data.datadir import read_table
from smop.data.errors import DataError
from smop.utils.io import sha256_of

NOISE_RECORD = "noise.txt"  # a noisy set's noise file, SNR (dB) and seed, as make_noisy_set writes it


@dataclasses.dataclass(frozen=True)
class Noise:
    sha256: str
    snr_db: float
    seed: int

    def describe(self) -> str:
        return f"{self.snr_db:g} dB, seed {self.seed}, noise sha256 {self.sha256[:12]}"


@dataclasses.dataclass(frozen=True)
class SetFingerprint:
    utterances: int
    words: int
    text_sha256: str
    media_sha256: str
    noise: Optional[Noise] = None  # None: a clean set

    @classmethod
    def of(cls, data_dir: Union[str, Path], media: Sequence[str], root: Union[str, Path] = ".") -> "SetFingerprint":
        """The fingerprint of ``data_dir`` read through its input tables ``media`` (``wav.scp``,
        ``video.scp``: those the model reads); a noise file named by a relative path in its
        ``noise.txt`` is relative to ``root``, the directory make_noisy_set ran in."""
        data_dir = Path(data_dir)
        text = data_dir / "text"
        if not text.is_file():
            raise DataError(f"{data_dir}: no text file (not a data dir?)")
        rows = read_table(text, unique=True)
        lines = []
        for scp in sorted(media):
            if not (data_dir / scp).is_file():
                raise DataError(f"{data_dir}: no {scp}, which the model reads")
            lines += [f"{scp} {utt} {PurePath(path).name}" for utt, path in read_table(data_dir / scp, unique=True)]
        return cls(
            utterances=len(rows),
            words=sum(len(value.split()) for _, value in rows),
            text_sha256=sha256_of(text),
            media_sha256=hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest(),
            noise=_noise(data_dir, Path(root)),
        )

    def differences(self, other: "SetFingerprint") -> List[str]:
        """What differs from ``other``: "text", "media list", "noise"."""
        return [
            name
            for name, a, b in (
                ("text", self.text_sha256, other.text_sha256),
                ("media list", self.media_sha256, other.media_sha256),
                ("noise", self.noise, other.noise),
            )
            if a != b
        ]

    def digest(self, what: str) -> str:
        """One digest, shortened, for messages ("none" for a clean set's noise)."""
        if what == "text":
            return self.text_sha256[:12]
        if what == "media list":
            return self.media_sha256[:12]
        return self.noise.describe() if self.noise else "none (clean)"

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "SetFingerprint":
        noise = values.get("noise")
        fields = {f.name for f in dataclasses.fields(cls)} - {"noise"}
        return cls(**{k: values[k] for k in fields}, noise=Noise(**noise) if noise else None)


def _noise(data_dir: Path, root: Path) -> Optional[Noise]:
    record = data_dir / NOISE_RECORD
    if not record.is_file():
        return None
    values = dict(read_table(record))
    try:
        path, snr, seed = values["noise"], float(values["snr_db"]), int(values["seed"])
    except (KeyError, ValueError) as e:
        raise DataError(f"{record}: not a noise record (noise, snr_db, seed lines): {e}") from e
    noise_file = Path(path) if Path(path).is_absolute() else root / path
    if not noise_file.is_file():
        raise DataError(f"{record}: its noise file {path} is missing (relative paths are relative to {root})")
    return Noise(sha256_of(noise_file), snr, seed)
