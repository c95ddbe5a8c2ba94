import math

import pytest
import torch

from smop.projectors.router import TopKRouter, choice_fractions, load_balancing_loss, z_loss


def _router(weight):
    w = torch.tensor(weight, dtype=torch.float32)
    r = TopKRouter(w.shape[1], w.shape[0], top_k=2)
    with torch.no_grad():
        r.gate.weight.copy_(w)
    return r


# Gate rows pick coordinates, so the logits are the token's own numbers.
GATE = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
TOKENS = [[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.5, 0.0, 1.5]]


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def test_top_k_weights_are_renormalised_probabilities():
    out = _router(GATE)(torch.tensor(TOKENS))
    assert out.experts.tolist() == [[0, 1], [1, 2], [2, 0], [2, 0]]
    for i, z in enumerate(TOKENS):
        p = _softmax(z)
        a, b = out.experts[i].tolist()
        assert out.weights[i].tolist() == pytest.approx([p[a] / (p[a] + p[b]), p[b] / (p[a] + p[b])], abs=1e-6)
    assert torch.allclose(out.weights.sum(-1), torch.ones(4))
    assert out.logits.dtype == torch.float32


def test_load_balancing_and_z_loss_hand_computed():
    out = _router(GATE)(torch.tensor(TOKENS))
    n, e = 4, 3
    # f[r][e]: share of tokens whose r-th choice is e. Choices: (0,1) (1,2) (2,0) (2,0).
    f = [[1 / 4, 1 / 4, 2 / 4], [2 / 4, 1 / 4, 1 / 4]]
    assert torch.allclose(choice_fractions(out.experts, e), torch.tensor(f))
    probs = [_softmax(z) for z in TOKENS]
    p_mean = [sum(p[j] for p in probs) / n for j in range(e)]
    lb = e * sum(f[r][j] * p_mean[j] for r in range(2) for j in range(e))
    assert float(load_balancing_loss(out)) == pytest.approx(lb, rel=1e-6)
    lse = [math.log(sum(math.exp(v) for v in z)) for z in TOKENS]
    assert float(z_loss(out)) == pytest.approx(sum(v * v for v in lse) / n, rel=1e-6)


def test_balanced_routing_gives_lb_equal_to_k():
    # Uniform probabilities and every expert chosen equally often: L_lb = E * k * E * (1/E)^2 = k.
    r = TopKRouter(3, 4, top_k=2)
    with torch.no_grad():
        r.gate.weight.zero_()
    out = r(torch.randn(8, 3))
    out.experts = torch.tensor([[0, 1], [2, 3]] * 4)
    assert float(load_balancing_loss(out).detach()) == pytest.approx(2.0)


def test_empty_input_gives_zero_losses():
    out = _router(GATE)(torch.zeros(0, 3))
    assert float(load_balancing_loss(out)) == 0.0 and float(z_loss(out)) == 0.0


def test_bad_top_k():
    with pytest.raises(ValueError, match="top_k"):
        TopKRouter(4, 2, top_k=3)
