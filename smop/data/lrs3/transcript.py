"""LRS3 transcript files: a ``Text:`` line, then (pretrain/trainval/test) word timings.

Text:  SO WE NEED TO THINK ABOUT IT
Conf:  3
Ref:   ...

WORD START END ASDSCORE
SO 0.23 0.36 1.4
...
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

from smop.data.errors import DataError


class TranscriptError(DataError):
    pass


@dataclass
class Transcript:
    text: str  # upper case as in LRS3
    words: List[Tuple[str, float, float]] = field(default_factory=list)  # (word, start s, end s)


def read_transcript(path: Path) -> Transcript:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise TranscriptError(f"{path}: cannot read transcript: {e}") from e
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TranscriptError(f"{path}: transcript is not UTF-8 (byte {e.start})") from e
    lines = content.splitlines()
    text_line = next((line for line in lines if line.startswith("Text:")), None)
    if text_line is None:
        raise TranscriptError(f"{path}: no 'Text:' line")
    # LRS3 marks some non-speech with braces, e.g. {LG}; auto_avsr strips the braces.
    text = " ".join(text_line[len("Text:") :].replace("{", "").replace("}", "").split())
    if not text:
        raise TranscriptError(f"{path}: empty transcript")
    words: List[Tuple[str, float, float]] = []
    try:
        start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["WORD", "START", "END"])
    except StopIteration:
        return Transcript(text, words)
    for lineno, line in enumerate(lines[start + 1 :], start + 2):
        parts = line.split()
        if not parts:
            continue
        try:
            words.append((parts[0], float(parts[1]), float(parts[2])))
        except (IndexError, ValueError) as e:
            raise TranscriptError(f"{path}:{lineno}: bad word timing line {line!r}") from e
    return Transcript(text, words)


def split_by_words(words: List[Tuple[str, float, float]], max_seconds: float) -> List[Tuple[str, float, float]]:
    """Cut a long clip into segments of at most ``max_seconds`` at word boundaries.

    Returns (text, start, end) per segment. A single word longer than the limit is its own segment.
    """
    segments = []
    current: List[Tuple[str, float, float]] = []
    for w in words:
        if current and w[2] - current[0][1] > max_seconds:
            segments.append((" ".join(x[0] for x in current), current[0][1], current[-1][2]))
            current = []
        current.append(w)
    if current:
        segments.append((" ".join(x[0] for x in current), current[0][1], current[-1][2]))
    return segments
