#!/usr/bin/env python3
"""Run a command on Slurm, once or as a job array, with the run.pl interface.

    utils/slurm.pl [--config conf/slurm.conf] [options] [JOB=1:N] <log> <command...>

Options map to sbatch flags through the config file (lines "option NAME=VALUE ..." and
"default ..."): --gpu N -> --gres=gpu:N, --mem M -> --mem=M, --num_threads N -> --cpus-per-task=N,
--num_nodes N -> --nodes=N, --name X -> --job-name=X; --max_jobs_run N runs at most N tasks of an
array at once. The submission script, its flags as #SBATCH lines, is kept as <logdir>/q/<name>.sh,
and Slurm's own messages (time limit, memory, node failure) go to <logdir>/q/<name>[.N].out.
Waits for the jobs (sbatch --wait) and exits non-zero when any failed, naming the failing logs.
Without sbatch on PATH it says so in one line and writes nothing.
Named slurm.pl because espnet2.bin.launch recognises the job runner by this name (it then starts
training with srun on --num_nodes nodes).
"""
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from job_args import parse  # noqa: E402

DEFAULT_CONFIG = """\
default --partition=gpu --time=72:00:00
option gpu=0 --gres=none
option gpu=* --gres=gpu:$0
option mem=* --mem=$0
option num_threads=* --cpus-per-task=$0
option num_nodes=* --nodes=$0 --ntasks-per-node=1
option name=* --job-name=$0
"""
ENDED = re.compile(r"^# Ended \(code (\d+)\)", re.M)


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
        matching = [out for rkey, pat, out in rules if rkey == key and pat in ("*", value)]
        if not matching:
            print(f"slurm.pl: WARNING: no rule for --{key} in the config; ignored", file=sys.stderr)
            continue
        flags += [o.replace("$0", value) for o in matching[0]]
    # A later flag of the same name wins (as in sbatch); "--gres=none" (no GPU) is no sbatch value.
    last = {f.split("=", 1)[0]: i for i, f in enumerate(flags)}
    return [f for i, f in enumerate(flags) if last[f.split("=", 1)[0]] == i and f != "--gres=none"]


NO_SBATCH = ("slurm.pl: sbatch not found on PATH: this machine has no Slurm client. Install Slurm's client "
             "(Debian/Ubuntu: apt-get install slurm-client) and point SLURM_CONF at the cluster's slurm.conf, "
             "or run the jobs on this machine with cmd_backend=local (cmd.sh)")


def main():
    opts, jobs, log, cmd = parse(sys.argv[1:], "slurm.pl")
    if shutil.which("sbatch") is None:  # said before anything is written
        sys.exit(NO_SBATCH)
    config = DEFAULT_CONFIG
    if "config" in opts:
        with open(opts.pop("config"), encoding="utf-8") as f:
            config = f.read()
    max_jobs_run = opts.pop("max_jobs_run", None)
    logdir, base = os.path.split(os.path.abspath(log))
    qdir = os.path.join(logdir, "q")
    flags = sbatch_flags(opts, config)
    if jobs is None:
        name, ids = re.sub(r"\.log$", "", base), [None]
        logs = [os.path.abspath(log)]
        flags.append(f"--output={os.path.join(qdir, name)}.out")
    else:
        var, lo, hi = jobs
        pattern = re.compile(rf"\b{re.escape(var)}\b")
        name, ids = re.sub(r"\.log$", "", pattern.sub("", base).replace("..", ".").strip(".")), list(range(lo, hi + 1))
        logs = [os.path.abspath(pattern.sub(str(i), log)) for i in ids]
        cmd = pattern.sub("${SLURM_ARRAY_TASK_ID}", cmd)
        log = pattern.sub("%a", log)
        flags += [f"--array={lo}-{hi}" + (f"%{max_jobs_run}" if max_jobs_run else ""),
                  f"--output={os.path.join(qdir, name)}.%a.out"]
    os.makedirs(qdir, exist_ok=True)
    for path in logs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    sbatch_lines = "".join(f"#SBATCH {f}\n" for f in flags)
    script = f"""#!/bin/bash
{sbatch_lines}cd {shlex.quote(os.getcwd())}
log={shlex.quote(os.path.abspath(log))}
log=${{log//%a/${{SLURM_ARRAY_TASK_ID:-}}}}
{{
echo "# {cmd.replace('"', '')}"
echo "# Started at $(date) on $(hostname) (Slurm job ${{SLURM_JOB_ID}}, nodes ${{SLURM_JOB_NODELIST}})"
start=$(date +%s)
set -o pipefail
{cmd}
code=$?
echo "# Ended (code $code) at $(date), elapsed time $(( $(date +%s) - start )) seconds"
exit $code
}} > "$log" 2>&1
"""
    path = os.path.join(qdir, f"{name}.sh")
    with open(path, "w", encoding="utf-8") as f:
        f.write(script)
    for stale in logs:  # a log left by an earlier run must not pass for this one
        if os.path.exists(stale):
            os.unlink(stale)
    started = datetime.datetime.now()
    code = subprocess.call(["sbatch", "--wait", path])
    failed, unfinished = [], []
    for path_i in logs:
        text = open(path_i, encoding="utf-8", errors="replace").read() if os.path.exists(path_i) else ""
        ended = ENDED.findall(text)
        if not ended:
            unfinished.append(path_i)
        elif ended[-1] != "0":
            failed.append(path_i)
    if code == 0 and not failed and not unfinished:
        return
    elapsed = datetime.datetime.now() - started
    bad = failed + unfinished
    if not bad or (code != 0 and not any(os.path.exists(p) for p in logs)):
        sys.exit(f"slurm.pl: sbatch exited with {code} after {elapsed} (its message above); the script is {path}")
    msg = f"slurm.pl: {len(bad)} / {len(logs)} failed after {elapsed}, log is in {bad[0]}"
    if len(bad) > 1:
        msg += f" (and {len(bad) - 1} more)"
    if unfinished:
        outs = [os.path.join(qdir, f"{name}.{i}.out" if i is not None else f"{name}.out")
                for i, p in zip(ids, logs) if p in unfinished]
        msg += f"; {len(unfinished)} did not finish (killed or never started): see Slurm's messages in {outs[0]}"
    sys.exit(msg)


if __name__ == "__main__":
    main()
