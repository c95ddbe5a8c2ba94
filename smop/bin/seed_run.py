#!/usr/bin/env python3
"""The runs of a training config over several seeds, as the recipe's ``--seeds`` trains them.

    python -m smop.bin.seed_run --config conf/train_dedr.yaml --seeds 0 1 2 [--exp_root exp]
    exp/train_dedr
    exp/train_dedr_seed1 --seed 1 --init_param exp/train_asr_dedr_seed1/valid.loss.ave.pth
    exp/train_dedr_seed2 --seed 2 --init_param exp/train_asr_dedr_seed2/valid.loss.ave.pth

One line per seed: the run's folder, then its training options. The config's own seed trains in
exp/<config>, as without --seeds; another seed in exp/<config>_seed<N>. A model initialised from
another experiment's run (``init_param: [exp/<other>/...]``) starts from that experiment's run with
the same seed, so that each seed's runs form one chain (ASR -> AVSR) and the spread counts both.
"""

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from smop.experiment import CONFIG, seed_run_dir

DEFAULT_SEED = 0  # espnet2's --seed default


def own_seed(config: dict) -> int:
    return int(config.get("seed", DEFAULT_SEED))


def remap_init_param(entry: str, exp_root: Path, seed: int, default_own_seed: int) -> str:
    """``exp/<other>/<file>[:src:dst...]`` pointing at the same seed's run of <other>; other entries as
    they are. <other>'s own seed is read from its written config (exp/<other>/config.yaml), else taken
    to be ``default_own_seed`` (this config's)."""
    path, sep, rest = entry.partition(":")
    parts = Path(path).parts
    root = Path(exp_root).parts
    if len(parts) < len(root) + 2 or parts[: len(root)] != root:
        return entry
    other = parts[len(root)]
    written = Path(exp_root) / other / CONFIG
    other_seed = default_own_seed
    if written.is_file():
        other_seed = own_seed(yaml.safe_load(written.read_text(encoding="utf-8")) or {})
    run = seed_run_dir(exp_root, other, seed, other_seed)
    return str(Path(run, *parts[len(root) + 1 :])) + sep + rest


def seed_runs(config_file: Path, seeds, exp_root: Path = Path("exp")):
    """(run folder, training options) for each seed."""
    with open(config_file, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    tag = Path(config_file).stem
    mine = own_seed(config)
    init = config.get("init_param") or []
    runs = []
    for seed in seeds:
        options = []
        if seed != mine:
            options = ["--seed", str(seed)]
            if init:
                options += ["--init_param"] + [remap_init_param(e, exp_root, seed, mine) for e in init]
        runs.append((seed_run_dir(exp_root, tag, seed, mine), options))
    return runs


def main(cmd=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--exp_root", type=Path, default=Path("exp"))
    args = p.parse_args(cmd)
    if len(set(args.seeds)) != len(args.seeds):
        sys.exit(f"--seeds {' '.join(map(str, args.seeds))}: a seed is given twice")
    if not args.config.is_file():
        sys.exit(f"{args.config}: no such training config")
    for run, options in seed_runs(args.config, args.seeds, args.exp_root):
        print(" ".join([shlex.quote(str(run))] + [shlex.quote(o) for o in options]))


if __name__ == "__main__":
    main()
