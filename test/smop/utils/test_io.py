"""Atomic writes: complete files or none, with the permissions a plain open() gives."""

import stat

import pytest

from smop.utils.io import atomic_write


def test_atomic_write_leaves_a_complete_file_with_the_usual_permissions(tmp_path):
    with atomic_write(tmp_path / "a" / "RESULTS.md") as f:
        f.write("done\n")
    path = tmp_path / "a" / "RESULTS.md"
    (tmp_path / "plain").write_text("")
    assert path.read_text() == "done\n"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) and mode != 0o600  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "done\n" and [p.name for p in path.parent.iterdir()] == ["RESULTS.md"]


def test_atomic_write_follows_the_umask_of_the_moment(tmp_path):
    """The umask is the kernel's to apply when the file is made, not a value read at import."""
    import os

    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "private.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o640
