import pytest
import torch

from smop.compressors.avg_pool_compressor import AvgPoolCompressor
from smop.compressors.stack_compressor import StackCompressor


def test_avg_pool_values_lengths_and_partial_window():
    x = torch.arange(2 * 7 * 1, dtype=torch.float32).view(2, 7, 1)
    c = AvgPoolCompressor(input_size=1, rate=3)
    y, n = c(x, torch.tensor([7, 4]))
    # utterance 0: frames 0..6 -> windows (0,1,2) (3,4,5) (6) ; T' = ceil(7/3) = 3
    assert y.shape == (2, 3, 1) and n.tolist() == [3, 2]
    assert y[0, :, 0].tolist() == [1.0, 4.0, 6.0]
    # utterance 1 has 4 valid frames 7..10: windows (7,8,9), (10) -- padding is not averaged in
    assert y[1, :2, 0].tolist() == [8.0, 10.0]
    assert c.output_size() == 1


def test_avg_pool_batch_invariant():
    c = AvgPoolCompressor(input_size=5, rate=4)
    x = torch.randn(2, 10, 5)
    y, _ = c(x, torch.tensor([10, 6]))
    alone, _ = c(x[1:, :6], torch.tensor([6]))
    assert torch.allclose(y[1, :2], alone[0])


def test_stack_layout():
    x = torch.arange(2 * 5 * 2, dtype=torch.float32).view(2, 5, 2)
    c = StackCompressor(input_size=2, rate=2)
    y, n = c(x, torch.tensor([5, 3]))
    assert y.shape == (2, 3, 4) and n.tolist() == [3, 2] and c.output_size() == 4
    assert y[0, 0].tolist() == [0, 1, 2, 3]
    assert y[0, 2].tolist() == [8, 9, 0, 0]  # partial window zero-filled
    assert y[1, 1].tolist() == [14, 15, 0, 0]  # padding of utterance 1 masked


@pytest.mark.parametrize("cls", [AvgPoolCompressor, StackCompressor])
def test_rate_one_and_bad_rate(cls):
    x = torch.randn(1, 4, 3)
    y, n = cls(3, rate=1)(x, torch.tensor([4]))
    assert torch.equal(y, x) and n.tolist() == [4]
    with pytest.raises(ValueError):
        cls(3, rate=0)


@pytest.mark.parametrize("cls", [AvgPoolCompressor, StackCompressor])
def test_the_rate_comes_from_the_task_and_the_summary_says_it(cls):
    with pytest.raises(TypeError, match="rate"):
        cls(3)  # no default of its own: the task's per modality is the one
    assert cls(3, rate=2).summary() == {"type": cls.__name__, "rate": 2}


@pytest.mark.parametrize("cls", [AvgPoolCompressor, StackCompressor])
def test_a_set_of_rates_compresses_at_the_rate_each_call_names(cls):
    c = cls(2, rates=[4, 16])
    x, lengths = torch.randn(2, 50, 2), torch.tensor([50, 33])
    assert c.rates == (4, 16) and c.summary() == {"type": cls.__name__, "rates": [4, 16]}
    for rate, expected in ((None, [13, 9]), (4, [13, 9]), (16, [4, 3])):
        y, n = c(x, lengths, rate=rate)
        assert n.tolist() == expected and y.shape[1] == expected[0]
        assert y.shape[2] == c.output_size(rate) == (2 if cls is AvgPoolCompressor else 2 * (rate or 4))
        # the same output as a one-rate compressor built for that rate
        single, _ = cls(2, rate=rate or 4)(x, lengths)
        assert torch.equal(y, single)
    with pytest.raises(ValueError, match=r"rate 8 is not one of this compressor's rates \[4, 16\]"):
        c(x, lengths, rate=8)
    with pytest.raises(ValueError, match=r"rate 8 is not one of this compressor's rates \[4\]"):
        cls(2, rate=4)(x, lengths, rate=8)


@pytest.mark.parametrize("cls", [AvgPoolCompressor, StackCompressor])
def test_rate_and_rates_are_checked(cls):
    with pytest.raises(TypeError, match="rate"):
        cls(3, rate=2, rates=[2, 4])
    for bad in ([], [4, 4], [0, 2]):
        with pytest.raises(ValueError, match="distinct integers >= 1"):
            cls(3, rates=bad)
    with pytest.raises(ValueError, match=r"video_compressor_conf: set rate .* or rates .*not both"):
        cls.check_conf("video_compressor_conf", rate=2, rates=[2, 5])
    with pytest.raises(ValueError, match=r"video_compressor_conf.rates: a list of distinct integers"):
        cls.check_conf("video_compressor_conf", rates=[2, 2])
    cls.check_conf("video_compressor_conf", rates=[2, 5])
