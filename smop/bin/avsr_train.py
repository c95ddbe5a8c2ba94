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
    SmopAVSRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
