#!/usr/bin/env python3
"""Run a command locally, once or as an array of jobs, each with its own log (Kaldi run.pl style).

    utils/run.pl [options] [JOB=1:N] <log> <command...>

JOB (any NAME=a:b) is replaced in the log name and the command. Options --gpu, --mem,
--num_threads, --name and --max_jobs_run N are accepted (only the last has an effect here:
at most N jobs run at once; default: all). The log starts with the command and ends with its exit
code; the exit status is non-zero when any job failed, naming the failing logs.
Named run.pl because espnet2.bin.launch recognises the job runner by this name.
"""
import datetime
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from job_args import parse  # noqa: E402


def run_one(log, cmd):
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    start = time.time()
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"# {cmd}\n# Started at {datetime.datetime.now():%c}\n#\n")
        f.flush()
        code = subprocess.call(["bash", "-c", f"set -o pipefail; {cmd}"], stdout=f, stderr=subprocess.STDOUT)
        elapsed = time.time() - start
        f.write(f"# Accounting: time={elapsed:.0f} threads=1\n")
        f.write(f"# Ended (code {code}) at {datetime.datetime.now():%c}, elapsed time {elapsed:.0f} seconds\n")
    return code


def main():
    opts, jobs, log, cmd = parse(sys.argv[1:], "run.pl")
    if jobs is None:
        code = run_one(log, cmd)
        if code != 0:
            sys.exit(f"run.pl: job failed (code {code}), log is in {log}")
        return
    name, lo, hi = jobs
    ids = list(range(lo, hi + 1))
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    tasks = [(pattern.sub(str(i), log), pattern.sub(str(i), cmd)) for i in ids]
    workers = int(opts.get("max_jobs_run", len(tasks)))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        codes = list(pool.map(lambda t: run_one(*t), tasks))
    failed = [t[0] for t, c in zip(tasks, codes) if c != 0]
    if failed:
        sys.exit(f"run.pl: {len(failed)} / {len(tasks)} failed, log is in {failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))


if __name__ == "__main__":
    main()
