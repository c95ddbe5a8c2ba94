import subprocess
import sys

from smop.encoders.avhubert.checkpoint import load_avhubert


def test_cli_converts(pretrained, tmp_path):
    out = tmp_path / "x.safetensors"
    res = subprocess.run(
        [sys.executable, "-m", "smop.bin.convert_avhubert", pretrained["avhubert_pt"], str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "2 layers, dim 32" in res.stdout
    state, cfg = load_avhubert(out)
    assert cfg["encoder_embed_dim"] == 32 and "encoder.layer_norm.weight" in state


def test_cli_refuses_other_output_names(pretrained, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "smop.bin.convert_avhubert", pretrained["avhubert_pt"], str(tmp_path / "x.pt")],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "safetensors" in res.stderr
