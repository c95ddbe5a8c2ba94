"""The command line shared by run.pl and slurm.pl (Kaldi's job-runner interface):

[--NAME VALUE | --NAME=VALUE ...] [JOB=a:b] <log> <command...>
"""

import re
import shlex
import sys


def parse(argv, runner):
    """-> (options, (JOB name, a, b) or None, log, command as one shell string)."""
    argv = list(argv)
    opts = {}
    while argv and argv[0].startswith("--"):
        key = argv.pop(0)[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            if not argv:
                sys.exit(f"{runner}: option --{key} needs a value")
            value = argv.pop(0)
        opts[key] = value
    jobs = None
    if argv and re.match(r"^[A-Za-z_]+=\d+:\d+$", argv[0]):
        name, rng = argv.pop(0).split("=")
        lo, hi = map(int, rng.split(":"))
        jobs = (name, lo, hi)
    if len(argv) < 2:
        sys.exit(f"usage: {runner} [options] [JOB=1:N] <log> <command...>")
    log, command = argv[0], argv[1:]
    # Kaldi convention: words without white space pass unquoted (so "|" and ">" keep their shell
    # meaning); words with white space are quoted.
    cmd = " ".join(w if re.fullmatch(r"\S+", w) else shlex.quote(w) for w in command)
    return opts, jobs, log, cmd
