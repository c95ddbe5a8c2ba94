#!/usr/bin/env python3
"""Plot the share of tokens each expert receives, as first and as second choice, per modality
(Llama-SMoP's Figure 5), from the routing counts that decoding records.

    python -m smop.bin.plot_expert_usage exp/train_dedr --decode_tag decode_decode_valid.loss.ave [--sets test]

Reads <exp>/<decode_tag>/<set>/expert_usage.json (default: every clean set, i.e. no noisy copy
<set>_snr<dB>) and writes <exp>/expert_usage.png and <exp>/expert_usage.json. An experiment without sparse
experts (linear or mlp projector) is reported and skipped.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from smop.experiment import EXPERT_USAGE, EXPERT_USAGE_PLOT, ExperimentDir
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("plot_expert_usage")


def usage_figure(usage, title: str):
    """A matplotlib Figure of ``usage`` (expert_usage.json's data): per modality, the share of its
    tokens each expert gets as first and as second choice. Made without pyplot, so that threads
    (smop-demo's requests) can each draw one and nothing keeps it once dropped."""
    from matplotlib.figure import Figure

    modalities = [m for m in ("audio", "video") if m in usage]
    fig = Figure(figsize=(4.5 * len(modalities), 3.4))
    axes = fig.subplots(1, len(modalities), squeeze=False)
    for ax, m in zip(axes[0], modalities):
        ranks = sorted(usage[m])
        n_exp = len(usage[m][ranks[0]])
        width = 0.8 / len(ranks)
        for i, rank in enumerate(ranks):
            counts = usage[m][rank]
            share = [100 * c / max(sum(counts), 1) for c in counts]
            label = {"top1": "first choice", "top2": "second choice"}.get(rank, rank)
            ax.bar([e + (i - (len(ranks) - 1) / 2) * width for e in range(n_exp)], share, width, label=label)
        ax.axhline(100 / n_exp, color="gray", linestyle=":", linewidth=1)
        ax.set_xticks(range(n_exp))
        ax.set_xticklabels([f"E{e + 1}" for e in range(n_exp)])
        ax.set_ylabel("tokens (%)")
        ax.set_title(f"{m} tokens")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot(usage, sets, out: Path, title: str) -> None:
    fig = usage_figure(usage, f"{title} ({', '.join(sets)})")
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=120)


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp", type=Path)
    p.add_argument("--decode_tag", required=True, help="the decoding dir under the experiment (avsr.sh stage 4's)")
    p.add_argument("--sets", nargs="*", default=None)
    args = p.parse_args(cmd)
    setup_logging()
    exp = ExperimentDir(args.exp)
    usage, sets = exp.decoding(args.decode_tag).expert_usage(args.sets)
    if not usage:
        logger.info(f"{args.exp}: no expert usage recorded (no sparse projector, or not decoded yet); no plot")
        return
    with atomic_write(exp / EXPERT_USAGE) as f:
        f.write(json.dumps({"sets": sets, "usage": usage}, indent=2))
    plot(usage, sets, exp / EXPERT_USAGE_PLOT, args.exp.name)
    logger.info(f"{exp / EXPERT_USAGE_PLOT}: {', '.join(sets)}")


if __name__ == "__main__":
    sys.exit(main())
