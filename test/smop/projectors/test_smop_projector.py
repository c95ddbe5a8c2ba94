import pytest
import torch

from smop.projectors.dense_projector import LinearProjector, MLPProjector
from smop.projectors.expert_pool import ExpertPool
from smop.projectors.router import load_balancing_loss, z_loss
from smop.projectors.smop_projector import SmopProjector

D_IN, HID, D_OUT, E = 6, 10, 8, 4


def expert_params(d, h, o):
    # Linear(d->h) + Linear(h->o) + LayerNorm(o)
    return d * h + h + h * o + o + 2 * o


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "layout,expected",
    [
        ("jejr", E * expert_params(D_IN, HID, D_OUT) + D_IN * E),
        ("dedr", 2 * (E * expert_params(D_IN, HID, D_OUT) + D_IN * E)),
        ("jedr", E * expert_params(D_IN, HID, D_OUT) + 2 * D_IN * E),
    ],
)
def test_parameter_count_per_layout(layout, expected):
    p = SmopProjector({"audio": D_IN, "video": D_IN}, D_OUT, layout=layout, num_experts=E, expert_hidden=HID)
    assert n_params(p) == expected


def test_parameter_count_at_llama_1b_sizes():
    # targets.md: one expert 6.30 M, router 4,096, JEJR 25.2 M (E=4, Whisper-medium/AV-HuBERT-large -> 2048).
    with torch.device("meta"):
        p = SmopProjector({"audio": 1024, "video": 1024}, 2048, layout="jejr", num_experts=4, expert_hidden=2048)
    assert expert_params(1024, 2048, 2048) == 6_299_648
    assert n_params(p.routers["joint"]) == 4_096
    assert n_params(p) == 4 * 6_299_648 + 4_096


def test_single_modality_layouts_are_the_same_module():
    counts = {
        lay: n_params(SmopProjector({"audio": D_IN}, D_OUT, layout=lay, expert_hidden=HID))
        for lay in ("jejr", "dedr", "jedr")
    }
    assert len(set(counts.values())) == 1


def test_shared_pool_needs_equal_sizes():
    with pytest.raises(ValueError, match="equal input sizes"):
        SmopProjector({"audio": 6, "video": 12}, D_OUT, layout="jedr")
    SmopProjector({"audio": 6, "video": 12}, D_OUT, layout="dedr")  # fine


def test_bad_layout():
    with pytest.raises(ValueError, match="layout"):
        SmopProjector({"audio": 6}, D_OUT, layout="mixtral")


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(3, 7, D_IN, generator=g)
    v = torch.randn(3, 5, D_IN, generator=g)
    return {"audio": (a, torch.tensor([7, 4, 2])), "video": (v, torch.tensor([5, 3, 1]))}


@pytest.mark.parametrize("layout", ["jejr", "dedr", "jedr"])
def test_forward_backward_shapes_and_padding(layout):
    torch.manual_seed(0)
    p = SmopProjector({"audio": D_IN, "video": D_IN}, D_OUT, layout=layout, num_experts=E, expert_hidden=HID)
    feats = _batch()
    out = p(feats)
    assert out.embeds["audio"].shape == (3, 7, D_OUT) and out.embeds["video"].shape == (3, 5, D_OUT)
    # padded positions are zero, valid ones are LayerNorm outputs mixed by weights summing to 1
    assert float(out.embeds["audio"][1, 4:].abs().sum()) == 0.0
    assert float(out.embeds["video"][2, 1:].abs().sum()) == 0.0
    out.aux_loss.backward()
    assert all(r.gate.weight.grad is not None for r in p.routers.values())
    # expert usage: per modality, (top_k, E) counts of the valid tokens, each rank counting every
    # token once; the training log's stats are the same counts as fractions
    assert set(out.usage) == {"audio", "video"}
    for m, n in (("audio", 13), ("video", 9)):
        assert out.usage[m].shape == (2, E) and out.usage[m].sum(1).tolist() == [n, n]
        assert float(out.stats[f"{m}_tokens"]) == n
        for rank in (1, 2):
            assert sum(float(out.stats[f"{m}_top{rank}_e{e}"]) for e in range(E)) == pytest.approx(1.0)
            for e in range(E):
                assert float(out.stats[f"{m}_top{rank}_e{e}"]) == pytest.approx(float(out.usage[m][rank - 1, e]) / n)
    assert p.summary() == {
        "type": "SmopProjector",
        "layout": layout,
        "num_experts": E,
        "top_k": 2,
        "routers": 1 if layout == "jejr" else 2,
        "expert_pools": 2 if layout == "dedr" else 1,
    }


@pytest.mark.parametrize("layout", ["jejr", "dedr", "jedr"])
def test_padding_never_reaches_router_or_losses(layout):
    torch.manual_seed(0)
    p = SmopProjector({"audio": D_IN, "video": D_IN}, D_OUT, layout=layout, num_experts=E, expert_hidden=HID)
    feats = _batch()
    garbage = {m: (x.clone(), n) for m, (x, n) in feats.items()}
    garbage["audio"][0][1, 4:] = 1e3  # change only padded frames
    garbage["video"][0][2, 1:] = -1e3
    a, b = p(feats), p(garbage)
    assert torch.equal(a.aux_loss, b.aux_loss)
    for m in feats:
        assert torch.equal(a.embeds[m], b.embeds[m])
    assert a.stats.keys() == b.stats.keys() and all(torch.equal(a.stats[k], b.stats[k]) for k in a.stats)


def test_jejr_aux_loss_is_over_the_union_of_valid_tokens():
    torch.manual_seed(0)
    p = SmopProjector(
        {"audio": D_IN, "video": D_IN},
        D_OUT,
        layout="jejr",
        num_experts=E,
        expert_hidden=HID,
        lb_loss_weight=1.0,
        z_loss_weight=0.0,
    )
    feats = _batch()
    tokens = torch.cat([x[torch.arange(x.shape[1]) < n[:, None]] for x, n in feats.values()])
    assert tokens.shape[0] == 13 + 9
    expected = load_balancing_loss(p.routers["joint"](tokens))
    assert torch.allclose(p(feats).aux_loss, expected)


def test_dedr_aux_loss_averages_the_routers():
    torch.manual_seed(0)
    p = SmopProjector(
        {"audio": D_IN, "video": D_IN},
        D_OUT,
        layout="dedr",
        num_experts=E,
        expert_hidden=HID,
        lb_loss_weight=0.0,
        z_loss_weight=1.0,
    )
    feats = _batch()
    zs = []
    for m, (x, n) in feats.items():
        zs.append(z_loss(p.routers[m](x[torch.arange(x.shape[1]) < n[:, None]])))
    assert torch.allclose(p(feats).aux_loss, (zs[0] + zs[1]) / 2)


def test_batching_does_not_change_an_utterance():
    torch.manual_seed(0)
    p = SmopProjector({"audio": D_IN}, D_OUT, layout="dedr", num_experts=E, expert_hidden=HID)
    x, n = _batch()["audio"]
    full = p({"audio": (x, n)}).embeds["audio"]
    alone = p({"audio": (x[1:2, :4], n[1:2])}).embeds["audio"]
    assert torch.allclose(full[1, :4], alone[0], atol=1e-6)


@pytest.mark.parametrize("num_experts", [4, 8])
def test_sparse_dispatch_equals_dense_reference(num_experts):
    torch.manual_seed(0)
    pool = ExpertPool(num_experts, D_IN, HID, D_OUT)
    x = torch.randn(50, D_IN)
    logits = torch.randn(50, num_experts)
    w, idx = logits.softmax(-1).topk(2, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    assert torch.allclose(pool(x, idx, w), pool.forward_dense(x, idx, w), atol=1e-6)


def test_sparse_dispatch_runs_only_chosen_experts():
    torch.manual_seed(0)
    pool = ExpertPool(4, D_IN, HID, D_OUT)
    calls = []
    for i, expert in enumerate(pool.experts):
        expert.register_forward_hook(lambda mod, inp, out, i=i: calls.append((i, inp[0].shape[0])))
    idx = torch.tensor([[0, 2], [2, 0], [0, 2]])
    pool(torch.randn(3, D_IN), idx, torch.full((3, 2), 0.5))
    assert sorted(calls) == [(0, 3), (2, 3)]


@pytest.mark.parametrize("cls", [LinearProjector, MLPProjector])
def test_dense_projectors(cls):
    p = cls({"audio": D_IN, "video": 4}, D_OUT)
    feats = _batch()
    feats["video"] = (torch.randn(3, 5, 4), feats["video"][1])
    out = p(feats)
    assert out.embeds["video"].shape == (3, 5, D_OUT)
    assert float(out.aux_loss) == 0.0 and out.stats == {} and out.usage == {}
    assert float(out.embeds["audio"][2, 2:].abs().sum()) == 0.0
