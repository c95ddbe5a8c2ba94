#!/usr/bin/env python3
"""Score hypotheses with sclite (NIST SCTK) and cross-check the counts with jiwer.

    python -m smop.bin.score_wer --ref data/test/text --hyp exp/x/decode/test/text \
        --utt2spk data/test/utt2spk --output_dir exp/x/decode/test/score_wer

Writes ref.trn, hyp.trn, result.txt (``sclite -i rm -o all``) and wer.json. Hypotheses must
cover exactly the reference utterances (an error names the ones missing). sclite's counts are
checked independently: the reference words against jiwer's, the errors against an alignment with
sclite's own weights (substitution 4, insertion and deletion 3), or this exits with an error.
jiwer's counts are kept beside them: its alignment, with equal weights, finds the fewest errors,
which on poor hypotheses can be fewer than sclite's (e.g. 35 against 36 on 24 words).
"""

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import jiwer

from smop.data.datadir import c_sorted, read_table
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("score_wer")
SCLITE_CANDIDATES = ("/usr/lib/sctk/bin/sclite",)
FIELDS = ("snt", "wrd", "corr", "sub", "del", "ins", "err", "s_err")


def find_sclite() -> str:
    for candidate in (os.environ.get("SCLITE"), shutil.which("sclite"), *SCLITE_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("sclite not found: install SCTK (Debian: apt-get install sctk) or set SCLITE=/path/to/sclite")


def parse_sclite(report: str) -> dict:
    """Counts from the "| Sum |" line (rsum report), percentages from "| Sum/Avg|"."""
    counts = re.search(r"\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([\d.\s]+)\|", report)
    pct = re.search(r"\|\s*Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([\d.\s]+)\|", report)
    if not counts or not pct:
        raise SystemExit("could not find the Sum and Sum/Avg lines in the sclite report")
    raw = [int(counts.group(1)), int(counts.group(2))] + [int(float(x)) for x in counts.group(3).split()]
    per = [float(x) for x in pct.group(3).split()]
    return {"counts": dict(zip(FIELDS, raw)), "percent": dict(zip(FIELDS[2:], per))}


# sclite's alignment costs (SCTK's defaults): a substitution costs more than an insertion or a deletion
# but less than both, so its cheapest path can hold more errors than the fewest possible.
SUB_COST, INS_COST, DEL_COST = 4, 3, 3


def weighted_errors(ref: list, hyp: list) -> tuple:
    """(fewest, most) errors over the cheapest alignments of ``hyp`` to ``ref`` at sclite's costs:
    sclite reports one of these paths, and which one depends on its tie-breaking."""
    # each cell: (cost, fewest errors, most errors) over the cheapest paths to it
    prev = [(j * INS_COST, j, j) for j in range(len(hyp) + 1)]
    for i, word in enumerate(ref, 1):
        cur = [(i * DEL_COST, i, i)]
        for j, said in enumerate(hyp, 1):
            miss = word != said
            steps = (
                (prev[j - 1][0] + SUB_COST * miss, prev[j - 1][1] + miss, prev[j - 1][2] + miss),
                (prev[j][0] + DEL_COST, prev[j][1] + 1, prev[j][2] + 1),
                (cur[j - 1][0] + INS_COST, cur[j - 1][1] + 1, cur[j - 1][2] + 1),
            )
            best = min(step[0] for step in steps)
            tied = [step for step in steps if step[0] == best]
            cur.append((best, min(step[1] for step in tied), max(step[2] for step in tied)))
        prev = cur
    return prev[-1][1], prev[-1][2]


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--hyp", type=Path, required=True)
    p.add_argument("--utt2spk", type=Path, required=True)
    p.add_argument("--output_dir", type=Path, required=True)
    args = p.parse_args(cmd)
    setup_logging()
    refs = dict(read_table(args.ref))
    hyps = dict(read_table(args.hyp, value_required=False))
    spk = dict(read_table(args.utt2spk))
    missing, extra = sorted(set(refs) - set(hyps)), sorted(set(hyps) - set(refs))
    if missing or extra:
        raise SystemExit(
            f"{args.hyp} does not cover {args.ref}: {len(missing)} reference ids without a hypothesis "
            f"(e.g. {missing[:5]}), {len(extra)} hypotheses without a reference (e.g. {extra[:5]})"
        )
    keys = c_sorted(refs)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("ref.trn", refs), ("hyp.trn", hyps)):
        with atomic_write(out / name) as f:
            f.writelines(f"{' '.join(table[k].split())} ({spk[k]}-{k})\n" for k in keys)
    sclite = find_sclite()
    res = subprocess.run(
        [
            sclite,
            "-r",
            str(out / "ref.trn"),
            "trn",
            "-h",
            str(out / "hyp.trn"),
            "trn",
            "-i",
            "rm",
            "-o",
            "all",
            "stdout",
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"sclite failed: {res.stderr.strip()[-500:]}")
    with atomic_write(out / "result.txt") as f:
        f.write(res.stdout)
    scores = parse_sclite(res.stdout)

    words = jiwer.process_words([refs[k] for k in keys], [hyps[k] if hyps[k].strip() else "" for k in keys])
    jiwer_counts = {
        "wrd": sum(len(refs[k].split()) for k in keys),
        "sub": words.substitutions,
        "del": words.deletions,
        "ins": words.insertions,
        "err": words.substitutions + words.deletions + words.insertions,
    }
    scores["jiwer"] = {**jiwer_counts, "wer": 100 * words.wer}
    bounds = [weighted_errors(refs[k].split(), hyps[k].split()) for k in keys]
    fewest, most = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
    scores["check"] = {"costs": {"sub": SUB_COST, "ins": INS_COST, "del": DEL_COST}, "err": [fewest, most]}
    c = scores["counts"]
    if c["wrd"] != jiwer_counts["wrd"] or not fewest <= c["err"] <= most:
        between = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise SystemExit(
            f"sclite's counts do not check out: sclite {c['err']} errors / {c['wrd']} words; an alignment at "
            f"sclite's costs {between} errors, jiwer {jiwer_counts['err']} / {jiwer_counts['wrd']} words"
        )
    scores["wer"] = 100 * c["err"] / max(c["wrd"], 1)
    with atomic_write(out / "wer.json") as f:
        json.dump(scores, f, indent=2)
    logger.info(
        f"{out}: WER {scores['wer']:.2f} % ({c['err']} / {c['wrd']}; sub {c['sub']} del {c['del']} "
        f"ins {c['ins']}); checked"
        + ("" if c["err"] == jiwer_counts["err"] else f" (jiwer's fewest-errors alignment: {jiwer_counts['err']})")
    )


if __name__ == "__main__":
    main()
