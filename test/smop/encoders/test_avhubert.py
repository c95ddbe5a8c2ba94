import pickle

import pytest
import torch

from smop.encoders.avhubert.checkpoint import AVHUBERT_DEFAULTS, convert_fairseq_checkpoint, load_avhubert
from smop.encoders.avhubert.fairseq_writer import avhubert_fairseq_state, save_avhubert_fairseq
from smop.encoders.avhubert.model import AVHubertNet
from smop.encoders.avhubert.transformer import WeightNormConv1d
from smop.encoders.avhubert_encoder import AVHubertVideoEncoder

LARGE = dict(
    AVHUBERT_DEFAULTS,
    encoder_layers=24,
    encoder_embed_dim=1024,
    encoder_ffn_embed_dim=4096,
    encoder_attention_heads=16,
    layer_norm_first=True,
)
BASE = dict(AVHUBERT_DEFAULTS, layer_norm_first=True)
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


@pytest.mark.parametrize(
    "cfg,entries,params",
    # avhubert_checkpoint.md section 3: state-dict entries and parameter elements of the releases.
    [(LARGE, 538, 325_398_504), (BASE, 346, 103_330_280)],
)
def test_fairseq_layout_matches_the_official_checkpoints(cfg, entries, params):
    with torch.device("meta"):
        state = avhubert_fairseq_state(AVHubertNet(cfg), cfg, num_clusters=2000, final_dim=256)
    keys = list(state)
    assert len(keys) == entries
    assert sum(v.numel() for k, v in state.items() if not k.endswith(BUFFER_SUFFIXES)) == params
    assert keys[:2] == ["mask_emb", "label_embs_concat"]
    layer0 = [k for k in keys if k.startswith("encoder.layers.0.self_attn.") and k.endswith(".weight")]
    assert layer0 == [f"encoder.layers.0.self_attn.{p}_proj.weight" for p in ("k", "v", "q", "out")]
    pos = [k for k in keys if k.startswith("encoder.pos_conv")]
    assert pos == ["encoder.pos_conv.0.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"]
    d = cfg["encoder_embed_dim"]
    assert tuple(state["encoder.pos_conv.0.weight_v"].shape) == (d, d // 16, 128)
    assert tuple(state["encoder.pos_conv.0.weight_g"].shape) == (1, 1, 128)
    assert tuple(state["layer_norm.weight"].shape) == (2 * d,)
    assert tuple(state["feature_extractor_video.resnet.trunk.layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(state["feature_extractor_video.resnet.frontend3D.0.weight"].shape) == (64, 1, 5, 7, 7)


def test_fake_fairseq_checkpoint_loads_by_key_name(pretrained, tmp_path):
    from smop.encoders.avhubert.checkpoint import _stub_pickle

    raw = torch.load(pretrained["avhubert_pt"], map_location="cpu", weights_only=False, pickle_module=_stub_pickle)
    assert type(raw["task_state"]["dictionaries"][0]).__module__.endswith("fairseq.data.dictionary")
    enc = AVHubertVideoEncoder(pretrained["avhubert"])
    loaded = enc.net.state_dict()
    used = {k: v for k, v in raw["model"].items() if k not in AVHubertVideoEncoder.IGNORED_KEYS}
    assert set(used) == set(loaded)
    for k, v in used.items():
        assert torch.equal(loaded[k].float(), v.float()), k
    assert set(raw["model"]) - set(used) == set(AVHubertVideoEncoder.IGNORED_KEYS)
    # the sparse cfg.model (as fairseq stores it) is completed from AVHubertConfig defaults
    assert enc.config["encoder_layers"] == 2 and enc.config["layer_norm_first"] is True
    assert enc.config["resnet_relu_type"] == "prelu" and enc.output_size() == 32


def test_runtime_loading_refuses_pickles(pretrained):
    with pytest.raises(ValueError, match="safetensors"):
        load_avhubert(pretrained["avhubert_pt"])


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_conversion_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    pt = save_avhubert_fairseq(
        tmp_path / "evil.pt",
        seed=0,
        extra={"payload": _Evil(str(marker))},
        encoder_layers=1,
        encoder_embed_dim=16,
        encoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        conv_pos=4,
        conv_pos_groups=2,
    )
    with pytest.raises(Exception):  # plain pickle would run the payload: our stub loader must not
        pickle.loads(pickle.dumps(_Evil(str(tmp_path / "control")))).close()
        raise RuntimeError("payload executed, as expected for plain pickle")
    convert_fairseq_checkpoint(pt, tmp_path / "evil.safetensors")
    assert not marker.exists()
    state, cfg = load_avhubert(tmp_path / "evil.safetensors")
    assert cfg["encoder_layers"] == 1 and "encoder.layers.0.fc1.weight" in state


def test_weight_norm_matches_torch():
    conv = torch.nn.Conv1d(8, 8, kernel_size=4, padding=2, groups=2)
    conv = torch.nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
    ours = WeightNormConv1d(8, 4, groups=2)
    with torch.no_grad():
        ours.weight_g.copy_(conv.parametrizations.weight.original0)
        ours.weight_v.copy_(conv.parametrizations.weight.original1)
        ours.bias.copy_(conv.bias)
    x = torch.randn(2, 8, 11)
    assert torch.allclose(ours(x), conv(x), atol=1e-5)


def test_padding_mask_makes_batching_invisible(pretrained):
    enc = AVHubertVideoEncoder(pretrained["avhubert"])
    torch.manual_seed(0)
    video = torch.randn(2, 12, 88, 88)
    video[1, 7:] = 0.0  # collate pads with zeros
    y, n = enc(video, torch.tensor([12, 7]))
    alone, _ = enc(video[1:, :7], torch.tensor([7]))
    assert y.shape == (2, 12, 32) and n.tolist() == [12, 7]
    assert torch.allclose(y[1, :7], alone[0], atol=1e-5)


def test_frozen_and_low_precision(pretrained):
    enc = AVHubertVideoEncoder(pretrained["avhubert"], frozen_dtype="bfloat16")
    enc.to(torch.float32)  # what ESPnet's main_worker does
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert enc.net.post_extract_proj.weight.dtype == torch.bfloat16
    ref = AVHubertVideoEncoder(pretrained["avhubert"])
    video = torch.randn(1, 6, 88, 88)
    y, _ = enc(video, torch.tensor([6]))
    y_ref, _ = ref(video, torch.tensor([6]))
    assert y.dtype == torch.float32
    assert (
        torch.nn.functional.cosine_similarity(y.flatten(), y_ref.flatten(), dim=0) > 0.9
    )  # random tiny weights amplify bf16 rounding


def test_output_layer_and_bad_input(pretrained):
    enc = AVHubertVideoEncoder(pretrained["avhubert"], output_layer=1)
    y, _ = enc(torch.randn(1, 5, 88, 88), torch.tensor([5]))
    assert y.shape == (1, 5, 32)
    with pytest.raises(ValueError, match="output_layer"):
        AVHubertVideoEncoder(pretrained["avhubert"], output_layer=3)
    with pytest.raises(ValueError, match=r"\(B, T, H, W\)"):
        enc(torch.randn(1, 1, 5, 88, 88), torch.tensor([5]))
