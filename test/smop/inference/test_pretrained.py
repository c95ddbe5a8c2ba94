"""How a pack names a pretrained part: a path in the Hugging Face cache is a hub id, even through
the links a recipe makes (pretrained/llm -> the cache); another local path is not."""

import os

import pytest
from huggingface_hub import constants

from smop.inference.pretrained import PretrainedError, PretrainedPart, hub_source, resolve, stated_license
from smop.inference.settings import DecodeSettings

REV = "a" * 40


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A Hugging Face cache with one model repository whose files link to blobs, as downloads leave them."""
    root = tmp_path / "hub"
    repo = root / "models--org--tiny-llm"
    snap = repo / "snapshots" / REV
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name, text in (
        ("config.json", "{}"),
        ("weights.safetensors", "w"),
        ("README.md", "---\nlicense: mit\n---\n# x"),
    ):
        (repo / "blobs" / f"blob{len(name)}").write_text(text)
        os.symlink(f"../../blobs/blob{len(name)}", snap / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    return snap


def test_cache_paths_and_links_to_them_are_hub_ids(cache, tmp_path):
    assert hub_source(str(cache), cache, "dir") == {"hub_id": "org/tiny-llm", "revision": REV, "filename": None}
    recipe = tmp_path / "recipe" / "pretrained"
    recipe.mkdir(parents=True)
    os.symlink(cache, recipe / "llm")
    assert hub_source("pretrained/llm", recipe / "llm", "dir")["hub_id"] == "org/tiny-llm"
    file = cache / "weights.safetensors"
    assert hub_source(str(file), file, "file") == {
        "hub_id": "org/tiny-llm",
        "revision": REV,
        "filename": "weights.safetensors",
    }
    assert hub_source(str(recipe), recipe, "dir") is None  # a plain folder
    assert hub_source("org/tiny-llm", tmp_path / "org" / "tiny-llm", "dir") == {
        "hub_id": "org/tiny-llm",
        "revision": REV,
    }
    with pytest.raises(PretrainedError, match="org/absent: neither a local path .* nor a hub id in the local"):
        hub_source("org/absent", tmp_path / "org" / "absent", "dir")
    assert stated_license(cache) == "mit"


def test_hub_parts_resolve_in_the_cache_only(cache, tmp_path):
    assert resolve(PretrainedPart("decoder", "model_name_or_path", "dir", hub_id="org/tiny-llm"), tmp_path) == str(
        cache
    )
    part = PretrainedPart("video_encoder", "checkpoint", "file", hub_id="org/tiny-llm", filename="weights.safetensors")
    assert resolve(part, tmp_path) == str(cache / "weights.safetensors")
    with pytest.raises(
        PretrainedError,
        match="decoder_conf.model_name_or_path: org/other is not in the local Hugging "
        "Face cache .*hf download org/other",
    ):
        resolve(PretrainedPart("decoder", "model_name_or_path", "dir", hub_id="org/other"), tmp_path)
    with pytest.raises(PretrainedError, match="the pack does not hold"):
        resolve(PretrainedPart("decoder", "model_name_or_path", "dir", path="pretrained/decoder"), tmp_path)


def test_decode_settings():
    s = DecodeSettings.from_dict({"beam_size": 4, "early_stopping": "true", "num_workers": 3, "dtype": None}, "x.yaml")
    assert s.beam_size == 4 and s.early_stopping is True and s.dtype == "float32"
    assert s.replace(batch_size=8, beam_size=None).batch_size == 8 and s.replace(beam_size=None).beam_size == 4
    with pytest.raises(ValueError, match="x.yaml: early_stopping must be true or false"):
        DecodeSettings.from_dict({"early_stopping": "yes"}, "x.yaml")
    with pytest.raises(ValueError, match="dtype must be one of"):
        DecodeSettings(dtype="int8")
    with pytest.raises(TypeError, match="unknown decoding settings \\['beam'\\]"):
        s.replace(beam=3)
