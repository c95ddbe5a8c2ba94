"""tools/install.sh's checks before it builds anything: the Python version, and the Debian
packages a user without root cannot install (told at install time, not by a traceback later)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSTALL = Path(__file__).resolve().parents[2] / "tools" / "install.sh"
RECIPE_PACKAGES = ("sox", "ffmpeg", "espeak-ng")


def _copy(tmp_path: Path) -> Path:
    """install.sh in a scratch tree (it builds <tree>/tools/venv; these runs stop before that)."""
    (tmp_path / "tools").mkdir()
    shutil.copy(INSTALL, tmp_path / "tools" / "install.sh")
    return tmp_path / "tools" / "install.sh"


def _path_without(tmp_path: Path, names) -> str:
    """A PATH with every command of this machine but ``names``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(":"):
        if not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            if entry.name not in names and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry.path)
    return str(bin_dir)


def _python(version: str):
    """An interpreter of ``version`` that runs here (pyenv's, or one on PATH), or None."""
    found = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    candidates = [str(p) for p in found] + [shutil.which(f"python{version}") or ""]
    return next((c for c in candidates if c and subprocess.run([c, "-V"], capture_output=True).returncode == 0), None)


def test_unsupported_python_is_refused_before_anything_is_built(tmp_path):
    python = _python("3.13")
    if python is None:
        pytest.skip("no Python 3.13 on this machine")
    script = _copy(tmp_path)
    res = subprocess.run(["bash", str(script), "--python", python], capture_output=True, text=True)
    assert res.returncode == 1
    assert (
        f"smop needs Python 3.10, 3.11 or 3.12 (espnet 202511 pins sentencepiece 0.2.0, which has no wheel for "
        f"Python 3.13); {python} is Python 3.13"
    ) in res.stderr
    assert not (tmp_path / "tools" / "venv").exists()


def test_a_user_without_root_is_told_which_packages_are_missing(tmp_path):
    if not shutil.which("unshare") or subprocess.run(["unshare", "--user", "true"]).returncode != 0:
        pytest.skip("cannot run as a user without root here (unshare --user)")
    script = _copy(tmp_path)
    env = {**os.environ, "PATH": _path_without(tmp_path, RECIPE_PACKAGES)}
    # In a new user namespace the script runs as an unprivileged user (uid 65534), as a user would.
    res = subprocess.run(["unshare", "--user", "bash", str(script)], capture_output=True, text=True, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the recipes need Debian packages that are not installed: sox ffmpeg espeak-ng" in res.stderr
    assert "sudo apt-get install sox ffmpeg espeak-ng" in res.stderr and "--system-packages false" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "tools" / "venv").exists()


def test_the_package_version_is_written_once():
    import smop

    root = INSTALL.parents[1]
    out = subprocess.run(
        [sys.executable, "setup.py", "--version"], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == smop.__version__


def test_the_demo_extra_asks_for_debians_chromium(tmp_path):
    """--extra demo adds chromium to the Debian packages (its browser tests drive the system one)."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "--user", "true"]).returncode != 0:
        pytest.skip("cannot run as a user without root here (unshare --user)")
    script = _copy(tmp_path)
    env = {**os.environ, "PATH": _path_without(tmp_path, (*RECIPE_PACKAGES, "chromium"))}
    for extra, wanted in ((["--extra", "demo"], True), ([], False)):
        res = subprocess.run(
            ["unshare", "--user", "bash", str(script), *extra], capture_output=True, text=True, env=env
        )
        assert res.returncode == 1, res.stdout + res.stderr
        (line,) = [x for x in res.stderr.splitlines() if "sudo apt-get install" in x]
        packages = line.split("sudo apt-get install ")[1].split(")")[0].split()
        assert packages[:3] == ["sox", "ffmpeg", "espeak-ng"] and ("chromium" in packages) == wanted, line
