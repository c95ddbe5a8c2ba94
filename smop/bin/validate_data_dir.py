#!/usr/bin/env python3
"""Check a Kaldi-style data dir (sorted, consistent ids across files, no empty lines).

python -m smop.bin.validate_data_dir data/train
"""

import sys

from smop.data.datadir import DataDirError, validate_data_dir


def main(cmd=None):
    args = sys.argv[1:] if cmd is None else cmd
    if len(args) != 1:
        sys.exit("usage: python -m smop.bin.validate_data_dir <data-dir>")
    try:
        n = validate_data_dir(args[0])
    except (DataDirError, OSError) as e:
        sys.exit(f"validate_data_dir: {e}")
    print(f"validate_data_dir: {args[0]}: OK, {n} utterances")


if __name__ == "__main__":
    main()
