"""Mouth crops as the official LRS3 preparation cuts them, checked on faces whose geometry is known:
a face image in the reference face's own canvas, placed in the frame by a known similarity, with
the reference landmarks placed by the same similarity. Each runs with the official reference face
(third-party data: skipped where it is absent) and with the mini corpus's face."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from smop.data.errors import DataError
from smop.data.mouth_roi import (
    MOUTH,
    AlignmentError,
    MouthCropSettings,
    ReferenceFaceError,
    crop_mouths,
    load_reference_face,
)
from smop.mini.mean_face import MEAN_FACE

OFFICIAL_FACE = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "20words_mean_face.npy"
FRAME = 224
SIZE = 96


@pytest.fixture(scope="module", params=["official", "mini"])
def reference(request):
    if request.param == "mini":
        return MEAN_FACE.astype(np.float64)
    if not OFFICIAL_FACE.is_file():
        pytest.skip(f"the official reference face is not at {OFFICIAL_FACE} (third-party data, not in the repo)")
    return load_reference_face(OFFICIAL_FACE)


@pytest.fixture(scope="module")
def canonical(reference):
    """A textured grey face in the reference canvas (256x256, landmarks = the reference), never black."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.normal(0, 1, (256, 256)).astype(np.float32), (0, 0), 2.0) * 120 + 130
    cv2.fillPoly(img, [reference[MOUTH][:12].astype(np.int32)], 70)
    for eye in (slice(36, 42), slice(42, 48)):
        cv2.fillPoly(img, [reference[eye].astype(np.int32)], 60)
    return np.clip(img, 40, 250).astype(np.uint8)


def similarity(scale, degrees, tx, ty):
    a = math.radians(degrees)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def place(canonical, reference, poses):
    """Frames (T, FRAME, FRAME) with the canonical face placed by each (2, 3) pose, and its landmarks."""
    frames = np.stack(
        [
            cv2.warpAffine(canonical, m, (FRAME, FRAME), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            for m in poses
        ]
    )
    marks = np.stack([reference @ m[:, :2].T + m[:, 2] for m in poses])
    return frames, marks


def expected_crop(canonical, reference):
    """The crop cut from the canonical face itself: the reference mouth centre, rounded to a pixel."""
    x0, y0 = (int(v) for v in np.rint(reference[MOUTH].mean(0) - SIZE // 2))
    return canonical[y0 : y0 + SIZE, x0 : x0 + SIZE].astype(np.float64)


def shift(a, b):
    """Sub-pixel translation of image b relative to a (phase correlation)."""
    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64), win)
    return np.array([dx, dy])


@pytest.mark.parametrize("pose", [(1.0, 0, -15, -30), (0.9, 12, 20, -40), (1.3, -8, -60, -70), (1.1, 25, 10, -60)])
def test_same_crop_whatever_the_similarity(canonical, reference, pose):
    scale, degrees, tx, ty = pose
    m = similarity(scale, degrees, tx, ty)
    frames, marks = place(canonical, reference, [m] * 15)
    crops = crop_mouths(frames, marks, reference=reference)
    want = expected_crop(canonical, reference)
    assert crops.shape == (15, SIZE, SIZE) and crops.dtype == np.uint8
    error = np.abs(crops.astype(np.float64) - want).mean()
    one_pixel = np.abs(want[:, 1:] - want[:, :-1]).mean()
    assert error < 1.5 < 3 < one_pixel  # interpolation only; a pixel off would cost more
    assert np.abs(shift(want, crops[7])).max() < 0.2


def test_another_reference_face_gives_another_crop(canonical, reference):
    """The crops follow the reference face: a face 4 % larger cuts another part of the same picture."""
    frames, marks = place(canonical, reference, [similarity(1.0, 5, -10, -40)] * 12)
    centre = reference.mean(0)
    larger = crop_mouths(frames, marks, reference=centre + 1.04 * (reference - centre)).astype(np.float64)
    want = expected_crop(canonical, reference)
    assert np.abs(larger - want).mean() > np.abs(want[:, 1:] - want[:, :-1]).mean()  # worse than a pixel off


def test_a_drifting_head_keeps_the_mouth_in_place(canonical, reference):
    """Smoothing steadies the face's pose, not its position: no lag at the clip ends, none when speeding up."""
    poses = [similarity(1.0 + 0.004 * t, 0.3 * t, -20 + 0.5 * t + 0.06 * t**2, -50 + 0.8 * t) for t in range(30)]
    frames, marks = place(canonical, reference, poses)
    crops = crop_mouths(frames, marks, reference=reference)
    want = expected_crop(canonical, reference)
    for t, crop in enumerate(crops):
        assert np.linalg.norm(shift(want, crop)) < 0.3, f"frame {t}"


def test_black_outside_the_frame(canonical, reference):
    """A face near the bottom edge: the crop's rows below the frame are black, the others are the face."""
    m = similarity(1.0, 0, -17, 200 - reference[MOUTH].mean(0)[1])  # mouth centre 24 px above the bottom edge
    frames, marks = place(canonical, reference, [m] * 12)
    crops = crop_mouths(frames, marks, reference=reference)
    y0 = int(np.rint(reference[MOUTH].mean(0)[1] - SIZE // 2))
    frame_y = np.arange(SIZE) + y0 + m[1, 2]  # pure translation: crop row -> frame row
    outside, inside = frame_y > FRAME - 1 + 1, frame_y < FRAME - 1 - 1
    assert outside.sum() >= 20
    assert (crops[:, outside] == 0).all()
    assert (crops[:, inside] >= 30).all()


def test_missing_landmarks_are_interpolated(canonical, reference):
    frames, marks = place(canonical, reference, [similarity(1.0, 0, -15, -30)] * 20)
    marks[[0, 5, 6, 7, 19]] = np.nan
    crops = crop_mouths(frames, marks, reference=reference)
    assert np.abs(crops.astype(np.float64) - expected_crop(canonical, reference)).mean() < 2.5
    with pytest.raises(DataError, match="no frame has landmarks"):
        crop_mouths(frames, np.full_like(marks, np.nan), reference=reference)


def test_resized_crops(canonical, reference):
    frames, marks = place(canonical, reference, [similarity(1.0, 0, -15, -30)] * 12)
    assert crop_mouths(frames, marks, reference=reference, out_size=48).shape == (12, 48, 48)


def test_failed_alignment_raises(canonical, reference):
    frames, marks = place(canonical, reference, [similarity(1.0, 0, -15, -30)] * 12)
    with pytest.raises(AlignmentError, match="12 frames but 11 landmark frames"):
        crop_mouths(frames, marks[:11], reference=reference)
    with pytest.raises(AlignmentError, match=r"reference face of shape \(67, 2\)"):
        crop_mouths(frames, marks, reference=reference[:67])
    squeezed = marks.copy()
    squeezed[:, MOUTH] += [0, 80]  # a mouth far below the nose: lands off the canvas centre
    with pytest.raises(AlignmentError, match="px from the canvas centre"):
        crop_mouths(frames, squeezed, reference=reference)


def test_reference_face_file_checks(tmp_path, reference):
    good = tmp_path / "face.npy"
    np.save(good, reference)
    np.testing.assert_array_equal(load_reference_face(good), reference)
    for name, data, message in [
        ("missing.npy", None, "cannot read the reference face"),
        ("text.npy", b"hello", "not a .npy file"),
        ("shape.npy", np.zeros((5, 2)), r"shape \(5, 2\)"),
        ("nan.npy", np.full((68, 2), np.nan), "finite"),
        ("normalised.npy", (reference - 128) / 128, "do not lie in the 256x256 canvas"),
    ]:
        path = tmp_path / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        elif data is not None:
            np.save(path, data)
        with pytest.raises(ReferenceFaceError, match=message):
            load_reference_face(path)
    with pytest.raises(ReferenceFaceError, match="sha256 differs"):
        load_reference_face(good, sha256="0" * 64)


def test_crop_settings_round_trip(tmp_path):
    face = tmp_path / "faces" / "mean_face.npy"
    face.parent.mkdir()
    np.save(face, MEAN_FACE)
    path = tmp_path / "mouth_crop.yaml"
    MouthCropSettings.of_face(tmp_path / "faces" / ".." / "faces" / "mean_face.npy", 96, None, 12).write(path)
    settings = MouthCropSettings.read(path)
    assert settings.reference_face == face.resolve()
    assert settings.roi_size == 96 and settings.roi_resize is None and settings.smooth_window == 12
    # the digest is the file's: the face can be checked when the settings are used
    np.testing.assert_array_equal(
        load_reference_face(settings.reference_face, settings.reference_face_sha256), MEAN_FACE
    )
    MouthCropSettings.of_face(face, 96, 48, 12).write(path)
    assert MouthCropSettings.read(path).roi_resize == 48

    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(dict(values, roi_size="96")))
    with pytest.raises(DataError, match="roi_size must be a positive integer"):
        MouthCropSettings.read(path)
    path.write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "smooth_window"}))
    with pytest.raises(DataError, match="lack smooth_window"):
        MouthCropSettings.read(path)
