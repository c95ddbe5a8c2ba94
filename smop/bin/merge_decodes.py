#!/usr/bin/env python3
"""Merge the outputs of the decoding jobs; every utterance must be decoded exactly once.

    python -m smop.bin.merge_decodes --keys data/test/text --nj 4 --logdir exp/x/decode/test/logdir \
        --output_dir exp/x/decode/test

Writes <output_dir>/{text,score,expert_usage.json}. A missing job output, a missing or duplicated
utterance is an error naming them (no silent holes in the hypotheses).
"""

import argparse
import json
import logging
from pathlib import Path

from smop.data.datadir import c_sorted, read_table
from smop.experiment import EXPERT_USAGE, HYPOTHESES, Usage, add_usage
from smop.utils.io import atomic_write
from smop.utils.log import setup_logging

logger = logging.getLogger("merge_decodes")


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--logdir", type=Path, required=True)
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument(
        "--job_log", help="the jobs' logs, JOB standing for the job number (default: <logdir>/decode.JOB.log)"
    )
    args = p.parse_args(cmd)
    setup_logging()
    expected = [k for k, _ in read_table(args.keys)]
    merged = {"text": {}, "score": {}}
    usage: Usage = {}
    for j in range(1, args.nj + 1):
        out = args.logdir / f"output.{j}"
        for name in merged:
            path = out / HYPOTHESES / name
            if not path.exists():
                log = (args.job_log or f"{args.logdir}/decode.JOB.log").replace("JOB", str(j))
                raise SystemExit(f"decoding job {j} left no {path}; see {log}")
            for key, value in read_table(path, value_required=False):  # nothing recognised: no text
                if key in merged[name]:
                    raise SystemExit(f"utterance {key} decoded twice ({path})")
                merged[name][key] = value
        if (out / EXPERT_USAGE).exists():
            add_usage(usage, json.loads((out / EXPERT_USAGE).read_text()))
    missing = sorted(set(expected) - set(merged["text"]))
    extra = sorted(set(merged["text"]) - set(expected))
    if missing or extra:
        raise SystemExit(
            f"decoding covers {len(merged['text'])} of {len(expected)} utterances: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, table in merged.items():
        with atomic_write(args.output_dir / name) as f:
            f.writelines(f"{k} {table[k]}\n" for k in c_sorted(table))
    if usage:
        with atomic_write(args.output_dir / EXPERT_USAGE) as f:
            json.dump(usage, f, indent=2)
    logger.info(f"{args.output_dir}: {len(expected)} hypotheses from {args.nj} jobs")


if __name__ == "__main__":
    main()
