import contextlib
import sys

# espnet's transformer attention module prints a notice on stdout when flash-attn is absent; stdout
# carries data (--print_config > config.yaml), so the first import runs with stdout on stderr.
with contextlib.redirect_stdout(sys.stderr):
    import espnet2.train.trainer  # noqa: F401
