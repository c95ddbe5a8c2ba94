#!/usr/bin/env python3
"""Run a command locally, once or as an array of jobs, each with its own log (Kaldi run.pl style).

    utils/run.pl [options] [JOB=1:N] <log> <command...>

JOB (any NAME=a:b) is replaced in the log name and the command. Options: --max_jobs_run N (at
most N jobs at once; default: all) and --gpu N: each job gets N GPUs of its own through
CUDA_VISIBLE_DEVICES, taken from the GPUs this process sees (its CUDA_VISIBLE_DEVICES, else
nvidia-smi's list) and returned when the job ends, so at most <GPUs> / N jobs run at once (Kaldi's
run.pl ignores --gpu, and every job lands on the first GPU). --mem, --num_threads and --name are
accepted and ignored. The log starts with the command and ends with its exit code; the exit status
is non-zero when any job failed, naming the failing logs.
Named run.pl because espnet2.bin.launch recognises the job runner by this name.
"""
import datetime
import os
import queue
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from job_args import parse  # noqa: E402


def visible_gpus():
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else nvidia-smi's list."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def run_one(log, cmd, gpus=None):
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    start = time.time()
    env = dict(os.environ)
    note = ""
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        note = f"# CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}\n"
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"# {cmd}\n# Started at {datetime.datetime.now():%c}\n{note}#\n")
        f.flush()
        code = subprocess.call(["bash", "-c", f"set -o pipefail; {cmd}"], stdout=f, stderr=subprocess.STDOUT, env=env)
        elapsed = time.time() - start
        f.write(f"# Accounting: time={elapsed:.0f} threads=1\n")
        f.write(f"# Ended (code {code}) at {datetime.datetime.now():%c}, elapsed time {elapsed:.0f} seconds\n")
    return code


def gpu_groups(per_job):
    """Disjoint groups of ``per_job`` GPUs, one per job running at a time; None: no GPU assignment."""
    if per_job <= 0:
        return None
    gpus = visible_gpus()
    if len(gpus) < per_job:
        print(f"run.pl: warning: --gpu {per_job} but {len(gpus)} GPU(s) visible; jobs see the environment as it is",
              file=sys.stderr)
        return None
    return [gpus[i : i + per_job] for i in range(0, len(gpus) - per_job + 1, per_job)]


def main():
    opts, jobs, log, cmd = parse(sys.argv[1:], "run.pl")
    groups = gpu_groups(int(opts.get("gpu", 0)))
    if jobs is None:
        code = run_one(log, cmd, groups[0] if groups else None)
        if code != 0:
            sys.exit(f"run.pl: job failed (code {code}), log is in {log}")
        return
    name, lo, hi = jobs
    ids = list(range(lo, hi + 1))
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    tasks = [(pattern.sub(str(i), log), pattern.sub(str(i), cmd)) for i in ids]
    workers = int(opts.get("max_jobs_run", len(tasks)))
    free = None
    if groups:
        workers = min(workers, len(groups))
        free = queue.Queue()
        for g in groups:
            free.put(g)

    def job(task):
        if free is None:
            return run_one(*task)
        gpus = free.get()  # a job holds its GPUs until it ends
        try:
            return run_one(*task, gpus)
        finally:
            free.put(gpus)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        codes = list(pool.map(job, tasks))
    failed = [t[0] for t, c in zip(tasks, codes) if c != 0]
    if failed:
        sys.exit(f"run.pl: {len(failed)} / {len(tasks)} failed, log is in {failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))


if __name__ == "__main__":
    main()
