"""What the task knows of every model component (encoders, compressors, projectors, decoders).

A component is built from its ``*_conf`` verbatim (ESPnet's contract); besides its constructor it
declares, here, the parts of that conf that name pretrained weights, the checks a config can get
without loading anything, and a summary of what it is as built.
"""

from typing import ClassVar, Dict

import torch


class AbsComponent(torch.nn.Module):
    # Constructor arguments that name pretrained weights: {argument: "dir" (a Hugging Face model
    # directory or a hub id in the local cache) or "file"}. The config check makes sure they exist;
    # packing copies them or names them by hub id.
    PRETRAINED_ARGS: ClassVar[Dict[str, str]] = {}
    # How to get the pretrained weights, added to the message when a path is missing.
    PRETRAINED_SOURCE: ClassVar[str] = ""

    @classmethod
    def check_conf(cls, key: str, **conf) -> None:
        """Raise ValueError for what is wrong with ``conf`` beyond its keys and pretrained paths,
        found without loading any weights; ``conf`` holds every constructor argument the config
        gives or defaults (not those the task supplies), ``key`` names it (``decoder_conf``)."""

    def summary(self) -> Dict[str, object]:
        """What the component is as built, as plain data for reports (model_summary.yaml, RESULTS.md,
        model cards): its class and the settings that shape it."""
        return {"type": type(self).__name__}
