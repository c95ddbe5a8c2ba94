"""Kaldi-style data directories: writing tables atomically and validating them.

A data dir holds ``wav.scp`` and/or ``video.scp``, ``text``, ``utt2spk``, ``spk2utt`` and
``utt2num_frames`` (25 Hz video frames), each ``<utt> <value>`` per line, sorted by id in C order.
"""

from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from smop.data.errors import DataError
from smop.data.inputs import INPUTS
from smop.utils.io import atomic_write

MEDIA = (INPUTS["audio"].scp, INPUTS["video"].scp)  # wav.scp, video.scp
TABLES = (*MEDIA, "text", "utt2spk", "utt2num_frames")


class DataDirError(DataError):
    pass


def c_sorted(keys: Iterable[str]) -> List[str]:
    """Kaldi's LC_ALL=C order (byte order)."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def write_table(path: Path, table: Mapping[str, str]) -> None:
    with atomic_write(path) as f:
        for key in c_sorted(table):
            f.write(f"{key} {table[key]}\n")


def spk2utt(utt2spk: Mapping[str, str]) -> Dict[str, str]:
    groups: Dict[str, List[str]] = {}
    for utt in c_sorted(utt2spk):
        groups.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in groups.items()}


def write_data_dir(out: Path, tables: Mapping[str, Mapping[str, str]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_table(out / name, table)
    if "utt2spk" in tables:
        write_table(out / "spk2utt", spk2utt(tables["utt2spk"]))


def read_table(path: Union[str, Path], unique: bool = False, value_required: bool = True) -> List[Tuple[str, str]]:
    """``<key> <value>`` lines in file order, each value as written (less its newline): the one
    reader of Kaldi tables (data dirs, scp files, hypotheses, key lists). An empty line is an error
    naming the file and line; so is a key without a value when ``value_required`` (hypotheses may be
    empty, ESPnet's ``--key_file`` lists keys alone) and a repeated key when ``unique``."""
    rows, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            key, _, value = line.partition(" ")
            if value_required and not value.strip():
                raise DataDirError(f"{path}:{lineno}: no value for {key!r}")
            if unique:
                if key in seen:
                    raise DataDirError(f"{path}:{lineno}: duplicate utterance id {key!r}")
                seen.add(key)
            rows.append((key, value))
    return rows


def validate_data_dir(d: Path) -> int:
    """Checks in the spirit of Kaldi's validate_data_dir.sh; returns the number of utterances."""
    d = Path(d)
    present = [t for t in TABLES if (d / t).exists()]
    if "text" not in present or "utt2spk" not in present:
        raise DataDirError(f"{d}: needs text and utt2spk")
    if not set(MEDIA) & set(present):
        raise DataDirError(f"{d}: needs {' or '.join(MEDIA)}")
    keys = None
    for name in present + ["spk2utt"]:
        if not (d / name).exists():
            raise DataDirError(f"{d}: missing {name}")
        rows = read_table(d / name)
        ids = [k for k, _ in rows]
        if ids != c_sorted(ids):
            raise DataDirError(f"{d / name}: not sorted (LC_ALL=C)")
        if len(set(ids)) != len(ids):
            raise DataDirError(f"{d / name}: duplicate ids")
        if name == "spk2utt":
            utts = [u for _, v in rows for u in v.split()]
            if sorted(utts) != sorted(keys):
                raise DataDirError(f"{d}: spk2utt and utt2spk disagree")
            continue
        if keys is None:
            keys = ids
        elif ids != keys:
            missing = sorted(set(keys) - set(ids))[:3]
            extra = sorted(set(ids) - set(keys))[:3]
            raise DataDirError(f"{d}: {name} ids differ from {present[0]} (missing {missing}, extra {extra})")
    return len(keys)


def check_inputs_agree(
    inputs: Sequence[Tuple[str, str, str]], keys_from: Optional[str] = None, keys: Optional[Sequence[str]] = None
) -> None:
    """Every input file of a set (``(path, name, type)`` triples) holds every utterance of
    ``keys_from`` (a shape file, or a key list whose ids are ``keys``; default: the first input).
    A missing one would end as a bare KeyError in a data-loader worker; this names both files and the ids."""
    if not inputs:
        return
    source = keys_from or inputs[0][0]
    wanted = list(keys) if keys is not None else [key for key, _ in read_table(Path(source))]
    for path, _, _ in inputs:
        have = {key for key, _ in read_table(Path(path))}
        missing = [k for k in wanted if k not in have]
        if missing:
            raise DataDirError(
                f"{len(missing)} of the {len(wanted)} utterances of {source} are not in {path}, e.g. "
                f"{missing[:3]}: every input of a set must hold the same utterances (re-run the data "
                f"preparation, or keep only the common ids in each file)"
            )
