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
