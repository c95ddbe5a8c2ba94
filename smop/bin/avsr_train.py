#!/usr/bin/env python3
"""Train a Llama-SMoP model with ESPnet's trainer: python -m smop.bin.avsr_train --config ..."""

from smop.tasks.avsr import SmopAVSRTask


def get_parser():
    return SmopAVSRTask.get_parser()


def main(cmd=None):
    r"""SMoP AVSR training.

    Example:
        % python -m smop.bin.avsr_train --print_config --projector smop
        % python -m smop.bin.avsr_train --config conf/train_dedr.yaml --output_dir exp/train_dedr \
            --train_data_path_and_name_and_type data/train/wav.scp,speech,wav16k ...
    """
    try:
        SmopAVSRTask.main(cmd=cmd)
    finally:  # a rank started by torchrun: its gloo threads end here, not in the exit's teardown,
        # where one aborted the process ('terminate called without an active exception', once in CI)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
