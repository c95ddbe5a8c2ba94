"""Recipe hygiene: shellcheck on every script; shared files identical across recipes; path.sh
finds the repository through links."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "egs" / "mini_av" / "avsr_smop"
RECIPES = [MINI, ROOT / "egs" / "lrs3" / "avsr_smop"]
SCRIPTS = (
    [ROOT / "egs" / "TEMPLATE" / "avsr_smop" / n for n in ("avsr.sh", "path.sh", "cmd.sh", "utils/parse_options.sh")]
    + [r / n for r in RECIPES for n in ("run.sh", "cmd.sh", "db.sh")]
    + [p for r in RECIPES for p in sorted((r / "local").glob("*.sh"))]
    + [ROOT / "ci" / "test.sh", ROOT / "ci" / "slurm_cluster.sh", ROOT / "tools" / "install.sh"]
)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck():
    res = subprocess.run(["shellcheck", "-x", "-e", "SC1091", "--shell=bash", *map(str, SCRIPTS)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


@pytest.mark.parametrize("name", ["cmd.sh", "conf/slurm.conf"])
def test_shared_files_are_identical(name):
    template = (ROOT / "egs" / "TEMPLATE" / "avsr_smop" / name).read_text()
    for recipe in RECIPES:
        assert (recipe / name).read_text() == template, f"{recipe / name} differs from the TEMPLATE copy"


def test_recipe_links_resolve():
    for recipe in RECIPES:
        for name in ("avsr.sh", "path.sh", "utils/run.pl", "utils/parse_options.sh"):
            assert (recipe / name).resolve().is_file(), recipe / name


def test_every_config_parses():
    # Each shipped config is a valid SmopAVSRTask config (keys and component names).
    from smop.tasks.avsr import SmopAVSRTask, audio_encoder_choices, projector_choices, video_encoder_choices

    for recipe in RECIPES:
        for cfg in sorted((recipe / "conf").glob("train_*.yaml")):
            args = SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", "/tmp/unused"])
            projector_choices.get_class(args.projector)
            if args.modality != "video":
                audio_encoder_choices.get_class(args.audio_encoder)
            if args.modality != "audio":
                video_encoder_choices.get_class(args.video_encoder)


def _linked_recipe(tmp_path: Path) -> Path:
    """A work directory outside the repository whose files link to the mini recipe's (as ci/test.sh's)."""
    work = tmp_path / "work" / "mini_av"
    work.mkdir(parents=True)
    for f in MINI.iterdir():
        if f.name in ("run.sh", "avsr.sh", "path.sh", "cmd.sh", "db.sh", "conf", "local", "utils"):
            (work / f.name).symlink_to(f)
    return work


def test_path_sh_finds_the_repository_through_links(tmp_path):
    work = _linked_recipe(tmp_path)
    res = subprocess.run(["bash", "-c", ". ./path.sh && echo \"${SMOP_ROOT}\" && command -v python3"], cwd=work,
                         capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    smop_root, python3 = res.stdout.split()
    assert smop_root == str(ROOT)
    if (ROOT / "tools" / "venv").is_dir():  # activated from the repository, not from the work dir
        assert python3 == str(ROOT / "tools" / "venv" / "bin" / "python3")
