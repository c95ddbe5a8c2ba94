"""Entry point for the multi-process tests: runs training exactly as ``smop.bin.avsr_train`` does
(SmopAVSRTask.main, ESPnet's distributed path) and records, per rank, what the tests must see
but the trainer does not report: the tokens each expert pool routed to each expert in each
training step, and every file that ``torch.save`` wrote.

    torchrun --nproc_per_node 2 test/smop/tasks/ddp_probe.py --config ... (avsr_train options)

Records go to ``$SMOP_PROBE_DIR/rank<N>.jsonl`` (N: RANK from torchrun, SLURM_PROCID under srun).
"""

import json
import os
import sys

import torch

from smop.projectors.expert_pool import ExpertPool
from smop.tasks.avsr import SmopAVSRTask


def main():
    rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))
    log = open(os.path.join(os.environ["SMOP_PROBE_DIR"], f"rank{rank}.jsonl"), "a", encoding="utf-8")

    def record(**fields):
        log.write(json.dumps(fields) + "\n")
        log.flush()

    pool_forward = ExpertPool.forward

    def counting_forward(self, x, experts, weights):
        if torch.is_grad_enabled():  # training steps; validation runs without gradients
            record(kind="experts", counts=torch.bincount(experts.reshape(-1), minlength=len(self.experts)).tolist())
        return pool_forward(self, x, experts, weights)

    save = torch.save

    def recording_save(obj, f, *args, **kwargs):
        record(kind="save", path=str(f))
        return save(obj, f, *args, **kwargs)

    ExpertPool.forward = counting_forward
    torch.save = recording_save
    SmopAVSRTask.main(cmd=sys.argv[1:])


if __name__ == "__main__":
    main()
