"""dlib landmarks on clips of a real face (scikit-image's astronaut) under known similarity transforms."""

import sys

import numpy as np
import pytest

from face_clips import moved, render, require_landmarks_extra, smooth_path, write_clip
from smop.data.face_landmarks import DetectorUnavailable, FaceLandmarkDetector
from smop.data.landmarks import interpolate_missing
from smop.data.media import read_media, rgb_to_grey
from smop.data.mouth_roi import MOUTH

FACELESS = (12, 13, 14)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Grey frames of an mp4: frame 0 untransformed, then a moving head with three faceless frames."""
    require_landmarks_extra()
    path = smooth_path(30, faceless=FACELESS)
    mp4 = write_clip(tmp_path_factory.mktemp("faces") / "clip.mp4", render([(0.0, 1.0, 0.0, 0.0)] + path))
    _, frames, _ = read_media(mp4, need=("video",))
    return frames, path


@pytest.fixture(scope="module")
def hog():
    require_landmarks_extra()
    return FaceLandmarkDetector("hog", detect_every=1)


def _mouth(marks):
    return marks[..., MOUTH, :].mean(-2)


@pytest.mark.parametrize("every", [1, 5])
def test_mouth_centre_follows_the_transform(clip, every):
    frames, path = clip
    marks = FaceLandmarkDetector("hog", detect_every=every)(frames)
    assert marks.shape == (31, 68, 2) and marks.dtype == np.float32
    base = _mouth(marks[0])
    assert np.abs(base - (112, 119)).max() < 5  # the face is where the clip put it
    errors = []
    for t, tr in enumerate(path, start=1):
        if tr is None:
            assert np.isnan(marks[t]).all(), t
        else:
            errors.append(np.abs(_mouth(marks[t]) - moved(base[None], tr)[0]).max())
    assert len(errors) == 27 and max(errors) < 3, errors


def test_faceless_frames_are_interpolated(clip, hog):
    frames, path = clip
    marks = hog(frames)
    filled = interpolate_missing(marks.astype(np.float64))
    assert not np.isnan(filled).any()
    before, after = FACELESS[0], FACELESS[-1] + 2  # frame indices (frame 0 is the untransformed one)
    for i, t in enumerate(range(before + 1, after), start=1):
        want = marks[before] + (marks[after] - marks[before]) * i / (after - before)
        np.testing.assert_allclose(filled[t], want, atol=1e-4)
        # the head moves smoothly, so the filled mouth stays near where it would have been
        true = moved(_mouth(marks[0])[None], smooth_path(len(path))[t - 1])[0]
        assert np.abs(_mouth(filled[t]) - true).max() < 3


def test_tracking_searches_whole_frames_less(clip, hog, monkeypatch):
    frames, _ = clip
    every = hog(frames)
    tracker = FaceLandmarkDetector("hog", detect_every=5)
    searches = []
    faces = tracker.faces
    monkeypatch.setattr(
        tracker, "faces", lambda frame, upsample=None: searches.append(frame.shape) or faces(frame, upsample)
    )
    tracked = tracker(frames)
    whole = sum(shape == frames.shape[1:] for shape in searches)
    # every 5th frame, the faceless frames 13-15 and the frame after them; windows elsewhere
    assert whole == 10 and len(searches) == 31 + 1, searches
    np.testing.assert_array_equal(np.isnan(tracked), np.isnan(every))
    ok = ~np.isnan(every).any(axis=(1, 2))
    assert np.abs(_mouth(tracked[ok]) - _mouth(every[ok])).max() < 2


def test_largest_face_wins(hog):
    import cv2

    big = render([(0.0, 1.0, 0.0, 0.0)])[0]
    small = cv2.resize(big, (112, 112), interpolation=cv2.INTER_AREA)
    both = big.copy()
    both[:112, 112:] = small  # a half-size face in the top right corner, beside the large one
    grey_big, grey_both = rgb_to_grey(np.stack([big, both]))
    only_small = np.full_like(grey_big, 128)
    only_small[:112, 112:] = grey_both[:112, 112:]
    assert len(hog.faces(grey_both)) == 2
    small_marks = hog.detect_frame(only_small)
    assert small_marks is not None and small_marks[:, 0].min() > 112  # the small face alone is found
    np.testing.assert_allclose(_mouth(hog.detect_frame(grey_both)), _mouth(hog.detect_frame(grey_big)), atol=3)


def test_hd_frames_are_searched_scaled_down(hog, monkeypatch):
    """A 1280x720 frame: the whole-frame search runs on it scaled to 960x540 (not upsampled to
    2560x1440), and finds the face and its landmarks where the full-size search does."""
    import cv2

    face = cv2.resize(rgb_to_grey(render([(0.0, 1.0, 0.0, 0.0)]))[0], (448, 448), interpolation=cv2.INTER_LINEAR)
    frame = np.full((720, 1280), 90, np.uint8)
    frame[150:598, 600:1048] = face
    searched = []
    faces = hog.faces
    monkeypatch.setattr(
        hog, "faces", lambda image, upsample=None: searched.append((image.shape, upsample)) or faces(image, upsample)
    )
    marks = hog.detect_frame(frame)
    assert searched == [((540, 960), 0)]
    full = FaceLandmarkDetector("hog", detect_every=1)
    full.MAX_SEARCH_SIDE = 10**6  # the whole frame, upsampled once
    want = full.detect_frame(frame)
    assert marks is not None and want is not None
    # the shape predictor starts from a box found at another scale: points within 2 % of the
    # face's ~220 px (measured: 3 px on the jaw), the mouth centre, which the crop follows, within 1 px
    assert np.abs(marks - want).max() < 4.5 and np.abs(_mouth(marks) - _mouth(want)).max() < 1
    assert 600 < _mouth(marks)[0] < 1048


def test_cnn_detector(clip):
    require_landmarks_extra()
    frames, path = clip
    cnn = FaceLandmarkDetector("cnn")
    hog_base = _mouth(FaceLandmarkDetector("hog").detect_frame(frames[0]))
    t = 6  # the head turned by 8 degrees
    marks = cnn(frames[[0, t, FACELESS[0] + 1]])
    assert np.abs(_mouth(marks[0]) - hog_base).max() < 3
    assert np.abs(_mouth(marks[1]) - moved(hog_base[None], path[t - 1])[0]).max() < 3
    assert np.isnan(marks[2]).all()


def test_bad_arguments(hog):
    with pytest.raises(ValueError, match="detector must be one of"):
        FaceLandmarkDetector("haar")
    with pytest.raises(ValueError, match=r"expected \(T, H, W\) uint8 grey frames"):
        hog(np.zeros((2, 8, 8, 3), np.uint8))


def test_missing_dlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    with pytest.raises(
        DetectorUnavailable,
        match=r"dlib is not installed: install the landmarks extra: tools/install.sh --extra landmarks",
    ):
        FaceLandmarkDetector()
