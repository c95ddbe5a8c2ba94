"""What the demo's tests upload: a tiny audio-visual pack, a talking-head mp4 (a real face that dlib
finds), a tone wav, a faceless mp4, a broken file and a header-less webm (as browsers record)."""

import json
import subprocess
from pathlib import Path
from typing import Dict, Sequence

from face_clips import render, smooth_path, write_clip
from tiny_pack import build_tiny_pack, write_wave


def demo_inputs(root: Path, pretrained: dict) -> dict:
    """The pack and the files under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    mp4 = write_clip(root / "talk.mp4", render(smooth_path(40)))
    webm = root / "recorded.webm"
    with webm.open("wb") as out:  # written to a pipe, as MediaRecorder writes it: no duration in the header
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(mp4), "-c:v", "libvpx", "-c:a", "libopus", "-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
        )
    broken = root / "broken.mp4"
    broken.write_bytes(mp4.read_bytes()[:2000])  # the header and a little of the first frame
    return {
        "pack": build_tiny_pack(root / "av_pack", pretrained, "audiovisual"),
        "mp4": mp4,
        "wav": write_wave(root / "tone.wav", 1.5),
        "faceless": write_clip(root / "faceless.mp4", render([None] * 30)),
        "broken": broken,
        "webm": webm,
    }


def transcribe_json(pack: Path, media: Sequence[Path], out: Path, *options: str) -> Dict[str, dict]:
    """smop-transcribe's JSON record of each of ``media`` by file name (what the demo must match),
    the model loaded once."""
    from smop.bin import transcribe

    transcribe.main(["--model", str(pack), "--output_format", "json", "--output", str(out), *options, *map(str, media)])
    return {Path(f["file"]).name: f for f in json.loads(out.read_text())["files"]}
