import contextlib
import io
import logging

# espnet's transformer attention module prints "Failed to import Flash Attention, using ESPnet
# default" on stdout when flash-attn is absent (it is optional): stdout carries data
# (--print_config > config.yaml, smop-transcribe's transcripts), so the notice goes to the log.
_printed = io.StringIO()
with contextlib.redirect_stdout(_printed):
    import espnet2.train.trainer  # noqa: F401
for _line in filter(str.strip, _printed.getvalue().splitlines()):
    logging.getLogger("espnet2").debug(_line)
