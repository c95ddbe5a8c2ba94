"""An experiment's results as RESULTS.md and model cards show them: what was trained, WER tables."""
import json
import re
from pathlib import Path

import yaml


def snr_of(name: str) -> str:
    m = re.search(r"_snr(-?\d+(?:\.\d+)?)$", name)
    return m.group(1) if m else "clean"


def describe(exp: Path) -> str:
    cfg_path = exp / "config.yaml"
    if not cfg_path.exists():
        return "not trained"
    cfg = yaml.safe_load(cfg_path.read_text())
    proj = cfg.get("projector")
    pc = cfg.get("projector_conf", {})
    if proj == "smop":
        proj = f"smop {pc.get('layout', 'dedr').upper()} (E={pc.get('num_experts', 4)}, k={pc.get('top_k', 2)})"
    text = f"modality {cfg.get('modality')}, projector {proj}, max_epoch {cfg.get('max_epoch')}"
    log = exp / "train.log"
    if log.exists():
        m = re.findall(r"model: ([\d,]+) trainable / ([\d,]+) parameters", log.read_text(errors="replace"))
        if m:
            text += f", {m[-1][0]} trainable of {m[-1][1]} parameters"
    return text


def wer_table(exp: Path, decode_tag: str, sets) -> tuple:
    """The markdown WER table of one experiment's scored sets, and the WER (%) by set."""
    lines = ["|dataset|SNR (dB)|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|", "|---|---|---|---|---|---|---|---|---|---|"]
    errors = {}
    for s in sets:
        wer = exp / decode_tag / s / "score_wer" / "wer.json"
        if not wer.exists():
            lines.append(f"|{s}|{snr_of(s)}|-|-|-|-|-|-|-|-|")
            continue
        r = json.loads(wer.read_text())
        c, pc = r["counts"], r["percent"]
        lines.append(f"|{s}|{snr_of(s)}|{c['snt']}|{c['wrd']}|{pc['corr']:.1f}|{pc['sub']:.1f}|{pc['del']:.1f}|"
                     f"{pc['ins']:.1f}|{pc['err']:.1f}|{pc['s_err']:.1f}|")
        errors[s] = pc["err"]
    return lines, errors
