import numpy as np
import pytest

from smop.data.landmarks import LandmarkError, interpolate_missing, smooth


def _smooth_by_hand(marks, window):
    """Frame by frame: the mean over t-h..t+h, h = min(window // 2, t, T - 1 - t), moved onto frame t's centroid."""
    out = []
    for t in range(len(marks)):
        h = min(window // 2, t, len(marks) - 1 - t)
        mean = marks[t - h : t + h + 1].mean(0)
        out.append(mean + marks[t].mean(0) - mean.mean(0))
    return np.stack(out)


@pytest.mark.parametrize("frames,window", [(40, 12), (9, 12), (13, 12), (1, 12), (20, 5), (20, 1)])
def test_smoothing_window_shrinks_on_both_sides_at_the_clip_ends(frames, window):
    marks = np.random.default_rng(frames).normal(100, 20, (frames, 68, 2))
    out = smooth(marks, window)
    np.testing.assert_allclose(out, _smooth_by_hand(marks, window), atol=1e-9)
    np.testing.assert_allclose(out[0], marks[0])  # no neighbours on one side: the frame itself
    np.testing.assert_allclose(out[-1], marks[-1])
    if frames == 40:  # frame 2 averages frames 0..4; an interior frame 13 frames
        mean = marks[0:5].mean(0)
        np.testing.assert_allclose(out[2], mean + marks[2].mean(0) - mean.mean(0))
        mean = marks[14:27].mean(0)
        np.testing.assert_allclose(out[20], mean + marks[20].mean(0) - mean.mean(0))


def test_smoothing_keeps_each_frames_position_and_removes_jitter():
    rng = np.random.default_rng(0)
    shape = rng.normal(0, 30, (68, 2))
    t = np.arange(50)[:, None, None]
    moving = shape + 2.0 * t + 0.05 * t**2  # accelerating head
    jittered = moving + rng.normal(0, 1.0, moving.shape)
    out = smooth(jittered)
    np.testing.assert_allclose(out.mean(1), jittered.mean(1))  # re-centred on each frame's centroid

    def shape_error(m):
        return np.abs((m - m.mean(1, keepdims=True)) - (moving - moving.mean(1, keepdims=True)))[10:-10].mean()

    assert shape_error(out) < 0.5 * shape_error(jittered)


def test_interpolate_missing():
    marks = np.zeros((6, 68, 2))
    marks[1], marks[4] = 1.0, 4.0
    marks[[0, 2, 3, 5]] = np.nan
    out = interpolate_missing(marks)
    np.testing.assert_allclose(out[:, 0, 0], [1, 1, 2, 3, 4, 4])  # linear between, edges repeated
    with pytest.raises(LandmarkError, match="no frame has landmarks"):
        interpolate_missing(np.full((3, 68, 2), np.nan))
