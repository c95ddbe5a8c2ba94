#!/usr/bin/env python3
"""Run a command on Slurm, once or as a job array, with the run.pl interface.

    utils/slurm.pl [--config conf/slurm.conf] [options] [JOB=1:N] <log> <command...>

Options map to sbatch flags through the config file (lines "option NAME=VALUE ..." and
"default ..."): --gpu N -> --gres=gpu:N, --mem M -> --mem=M, --num_threads N -> --cpus-per-task=N,
--num_nodes N -> --nodes=N, --name X -> --job-name=X. Waits for the jobs (sbatch --wait) and exits
non-zero when any failed, naming the log. Named slurm.pl because espnet2.bin.launch recognises the
job runner by this name (it then starts training with srun on --num_nodes nodes).
"""
import datetime
import os
import re
import shlex
import subprocess
import sys
import tempfile

DEFAULT_CONFIG = """\
default --partition=gpu --time=72:00:00
option gpu=0 --gres=none
option gpu=* --gres=gpu:$0
option mem=* --mem=$0
option num_threads=* --cpus-per-task=$0
option num_nodes=* --nodes=$0 --ntasks-per-node=1
option name=* --job-name=$0
"""


def sbatch_flags(opts, config_text):
    flags, rules = [], []
    for line in config_text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "default":
            flags += parts[1:]
        elif parts[0] == "option":
            key, _, pat = parts[1].partition("=")
            rules.append((key, pat, parts[2:]))
    for key, value in opts.items():
        for rkey, pat, out in rules:
            if rkey == key and (pat == "*" or pat == value):
                flags += [o.replace("$0", value) for o in out]
                break
    # A later flag of the same name wins in sbatch; drop "--gres=none" that sbatch would reject.
    return [f for f in flags if f != "--gres=none"]


def main():
    argv = sys.argv[1:]
    config = DEFAULT_CONFIG
    opts = {}
    while argv and argv[0].startswith("--"):
        key = argv.pop(0)[2:].replace("-", "_")
        value = argv.pop(0) if "=" not in key else key.split("=", 1)[1]
        key = key.split("=", 1)[0]
        if key == "config":
            with open(value, encoding="utf-8") as f:
                config = f.read()
        else:
            opts[key] = value
    jobs = None
    if argv and re.match(r"^[A-Za-z_]+=\d+:\d+$", argv[0]):
        name, rng = argv.pop(0).split("=")
        jobs = (name, *map(int, rng.split(":")))
    if len(argv) < 2:
        sys.exit("usage: slurm.pl [options] [JOB=1:N] <log> <command...>")
    log, command = argv[0], argv[1:]
    cmd = " ".join(w if re.fullmatch(r"\S+", w) else shlex.quote(w) for w in command)
    if jobs is not None:
        name, lo, hi = jobs
        cmd = re.sub(rf"\b{re.escape(name)}\b", "${SLURM_ARRAY_TASK_ID}", cmd)
        log = re.sub(rf"\b{re.escape(name)}\b", "%a", log)
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    script = f"""#!/bin/bash
cd {shlex.quote(os.getcwd())}
log={shlex.quote(log)}
log=${{log//%a/${{SLURM_ARRAY_TASK_ID:-}}}}
{{
echo "# {cmd.replace('"', '')}"
echo "# Started at $(date) on $(hostname)"
start=$(date +%s)
set -o pipefail
{cmd}
code=$?
echo "# Ended (code $code) at $(date), elapsed time $(( $(date +%s) - start )) seconds"
exit $code
}} > "$log" 2>&1
"""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False, dir=os.path.dirname(log) or ".") as f:
        f.write(script)
        path = f.name
    flags = sbatch_flags(opts, config) + ["--wait", "--output=/dev/null"]
    if jobs is not None:
        flags.append(f"--array={jobs[1]}-{jobs[2]}")
    started = datetime.datetime.now()
    code = subprocess.call(["sbatch", *flags, path])
    os.unlink(path)
    if code != 0:
        sys.exit(f"slurm.pl: job(s) failed (sbatch exit {code}) after {datetime.datetime.now() - started}; logs: {log}")


if __name__ == "__main__":
    main()
