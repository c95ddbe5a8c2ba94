"""Recipe hygiene: shellcheck on every script; shared files identical across recipes; every
local/*.sh on one skeleton (shared log(), options with a help that shows them, no stray positional
arguments, python3); path.sh finds the repository through links; run.sh --help and skip groups."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "egs" / "TEMPLATE" / "avsr_smop"
MINI = ROOT / "egs" / "mini_av" / "avsr_smop"
RECIPES = [MINI, ROOT / "egs" / "lrs3" / "avsr_smop"]
LOCAL_SCRIPTS = [p for r in RECIPES for p in sorted((r / "local").glob("*.sh"))]
SCRIPTS = (
    [TEMPLATE / n for n in ("avsr.sh", "path.sh", "cmd.sh", "utils/parse_options.sh", "utils/log.sh", "utils/stamp.sh")]
    + [r / n for r in RECIPES for n in ("run.sh", "cmd.sh", "db.sh")]
    + LOCAL_SCRIPTS
    + [ROOT / "ci" / "test.sh", ROOT / "ci" / "slurm_cluster.sh", ROOT / "tools" / "install.sh"]
)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck():
    res = subprocess.run(
        ["shellcheck", "-x", "-e", "SC1091", "--shell=bash", *map(str, SCRIPTS)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-3000:]


# A reader that stops early (head, grep -q) closes the pipe: under pipefail the writer's next write
# dies of SIGPIPE and the script with it (exit 141), depending on how the output was buffered.
EARLY_EXIT_READER = re.compile(r"\|\s*(head\b|grep\s+-[A-Za-z]*q)")


def test_pipefail_scripts_have_no_early_exit_readers():
    bad = []
    for script in [*SCRIPTS, *(r / "run.sh" for r in RECIPES), ROOT / ".ci" / "run"]:
        text = script.read_text()
        if "pipefail" not in text:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split(" #", 1)[0]
            if not code.lstrip().startswith("#") and EARLY_EXIT_READER.search(code):
                bad.append(f"{script.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "pipes into head / grep -q under pipefail (use sed -n 1p / grep -c):\n" + "\n".join(bad)


@pytest.mark.parametrize("name", ["cmd.sh", "conf/slurm.conf"])
def test_shared_files_are_identical(name):
    template = (ROOT / "egs" / "TEMPLATE" / "avsr_smop" / name).read_text()
    for recipe in RECIPES:
        assert (recipe / name).read_text() == template, f"{recipe / name} differs from the TEMPLATE copy"


def test_recipe_links_resolve():
    for recipe in RECIPES:
        for name in ("avsr.sh", "path.sh", "utils/run.pl", "utils/parse_options.sh", "utils/log.sh", "utils/stamp.sh"):
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


# ----------------------------------------------------------------------------------------- skeleton
def _code(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_recipe_scripts_share_one_log_and_call_python3():
    for script in [*SCRIPTS, *(r / "run.sh" for r in RECIPES)]:
        if script.name in ("log.sh", "install.sh", "test.sh", "slurm_cluster.sh"):
            continue
        code = _code(script)
        assert not re.search(r"^\s*log\(\)", code, re.M), f"{script} defines its own log(): source utils/log.sh"
        # One interpreter convention: python3, which path.sh makes tools/venv's.
        assert not re.search(r"\$\{?python\b", code), f"{script} calls ${{python}}: recipe scripts call python3"
        assert not re.search(r"(^|[\s(])python\s", code, re.M), f"{script} calls python: recipe scripts call python3"
    for script in [TEMPLATE / "avsr.sh", *LOCAL_SCRIPTS]:
        assert ". utils/log.sh" in script.read_text(), script


def _local(script: Path, *args):
    return subprocess.run(
        ["bash", f"local/{script.name}", *args], cwd=script.parents[1], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("script", LOCAL_SCRIPTS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_local_scripts_reject_stray_arguments_and_show_their_options(script):
    # check_mean_face.sh takes exactly one path; the others options only.
    stray = ("a.npy", "stray") if script.name == "check_mean_face.sh" else ("stray",)
    res = _local(script, *stray)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Usage: local/" + script.name in res.stderr and "Error:" in res.stdout
    helped = _local(script, "--help")
    assert helped.returncode == 0 and "Usage: local/" + script.name in helped.stderr
    # The help shows each declared option with the value this call has.
    options = re.findall(r"^([a-z_]+)=.*#", script.read_text(), re.M)
    for name in options:
        assert f"--{name}" in helped.stderr, (script, name)
    if "nj" in options:
        assert re.search(r"--nj +# .*\(7\)", _local(script, "--nj", "7", "--help").stderr)


def test_run_sh_help_shows_the_recipe_values():
    res = subprocess.run(["./run.sh", "--help"], cwd=MINI, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    help_text = res.stderr
    assert re.search(r"--nj +# .*\(2\)$", help_text, re.M), help_text  # run.sh's --nj 2, not avsr.sh's 4
    assert '("conf/train_asr_dedr.yaml conf/train_vsr_dedr.yaml conf/train_dedr.yaml")' in help_text
    for group in ("--skip_data_prep", "--skip_train", "--skip_eval", "--skip_packing"):
        assert group in help_text
    stray = subprocess.run(["./run.sh", "stray"], cwd=MINI, capture_output=True, text=True, timeout=60)
    assert stray.returncode == 2 and "no positional arguments" in stray.stdout


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
    res = subprocess.run(
        ["bash", "-c", '. ./path.sh && echo "${SMOP_ROOT}" && command -v python3'],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr
    smop_root, python3 = res.stdout.split()
    assert smop_root == str(ROOT)
    if (ROOT / "tools" / "venv").is_dir():  # activated from the repository, not from the work dir
        assert python3 == str(ROOT / "tools" / "venv" / "bin" / "python3")


def test_skip_groups_skip_their_stages(tmp_path):
    work = _linked_recipe(tmp_path)
    res = subprocess.run(
        [
            "./run.sh",
            "--skip_data_prep",
            "true",
            "--skip_train",
            "true",
            "--skip_eval",
            "true",
            "--skip_packing",
            "true",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for n, what in (
        (0, "data preparation"),
        (1, "pretrained models"),
        (2, "shapes"),
        (3, "training"),
        (4, "decoding"),
        (5, "scoring"),
        (6, "packing"),
    ):
        assert f"Skip stage {n}: {what}" in res.stdout
    assert "Successfully finished" in res.stdout
    assert sorted(p.name for p in work.iterdir()) == [
        "avsr.sh",
        "cmd.sh",
        "conf",
        "db.sh",
        "local",
        "path.sh",
        "run.sh",
        "utils",
    ]  # nothing written
    # One group alone: the others run (stage 1 then fails for want of data, naming stage 0).
    res = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "1", "--skip_data_prep", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and "data/train is not prepared: run stage 0" in res.stdout
