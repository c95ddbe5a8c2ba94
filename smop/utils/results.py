"""An experiment's results as RESULTS.md and model cards show them: what was trained, WER tables."""
import json
import re
from pathlib import Path

import yaml


NOISY_SET = re.compile(r"^(.*)_snr(-?\d+(?:\.\d+)?)$")  # <clean set>_snr<dB>, as stage 0 names noisy copies


def snr_of(name: str) -> str:
    m = NOISY_SET.match(name)
    return m.group(2) if m else "clean"


def model_summary(exp: Path) -> dict:
    """What training recorded of the model it built (``<exp>/model_summary.yaml``)."""
    return yaml.safe_load((exp / "model_summary.yaml").read_text())


def describe(exp: Path) -> str:
    """One line on what ``exp`` trained, from the files training writes (config.yaml, model_summary.yaml)."""
    cfg_path, summary_path = exp / "config.yaml", exp / "model_summary.yaml"
    if not cfg_path.exists():
        return "not trained"
    if not summary_path.exists():
        raise FileNotFoundError(f"{summary_path} is missing: training writes it when it starts (run stage 3 for {exp})")
    cfg = yaml.safe_load(cfg_path.read_text())
    summary = model_summary(exp)
    proj = summary["projector"]
    projector = cfg["projector"]
    if "layout" in proj:
        projector += f" {proj['layout'].upper()} (E={proj['num_experts']}, k={proj['top_k']})"
    return (f"modality {summary['modality']}, projector {projector}, max_epoch {cfg['max_epoch']}, "
            f"{summary['trainable']:,} trainable of {summary['total']:,} parameters")


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
