"""Top-down framing of the estimator's input: boxes, the pixel/target mapping and its inverse."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from anymole_usd.plugins.estimator.augment import Augmentation, augment  # noqa: E402
from anymole_usd.plugins.estimator.framing import frame_box, from_frame, resample, to_frame  # noqa: E402


def test_frame_box_centres_and_fills():
    joints = torch.tensor([[[100.0, 60.0], [120.0, 160.0], [110.0, 100.0]],  # 20 x 100 px box
                           [[0.0, 0.0], [256.0, 200.0], [10.0, 10.0]]])  # already fills the image
    zoom, shift = frame_box(joints, (256, 256), fill=0.75, max_zoom=3.0)
    assert zoom[0].item() == pytest.approx(0.75 * 256 / 100)
    assert zoom[1].item() == 1.0  # never zooms out
    framed = to_frame(joints, zoom, shift, (256, 256))
    lo, hi = framed.min(1).values, framed.max(1).values
    assert torch.allclose((lo + hi) / 2, torch.full((2, 2), 128.0), atol=1e-4)  # box centred
    assert (hi - lo)[0].max().item() == pytest.approx(0.75 * 256, rel=1e-5)
    tiny = torch.tensor([[[50.0, 50.0], [52.0, 53.0]]])
    assert frame_box(tiny, (256, 256), 0.75, 3.0)[0].item() == 3.0  # capped
    assert torch.allclose(from_frame(framed, zoom, shift, (256, 256)), joints, atol=1e-4)


def test_unzoomed_resample_is_the_area_average():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 64, 48, generator=gen)
    half = resample(img, torch.zeros(2, 2), torch.ones(2), (32, 24))
    assert torch.allclose(half, F.avg_pool2d(img, 2), atol=1e-5)


def test_framed_pixels_and_targets_agree():
    """A bright pixel at a joint of a full-size render lands where the framed target says, at network size."""
    img = torch.zeros(3, 3, 128, 128)
    joints = torch.tensor([[[40.5, 70.5], [60.5, 30.5]]]).repeat(3, 1, 1)
    img[:, :, 70, 40] = 1.0
    zoom, shift = frame_box(joints, (128, 128), 0.75, 3.0)
    quiet = Augmentation(translate=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    res = augment(img, joints, (128, 128), quiet, torch.Generator().manual_seed(1), zoom0=zoom, shift0=shift,
                  out_size=(64, 64))
    assert res.images.shape == (3, 3, 64, 64)
    assert torch.allclose(res.depth_scale, 1.0 / zoom)
    for b in range(3):
        peak = torch.nonzero(res.images[b, 0] == res.images[b, 0].max())[0].float()  # (row, col), 64 px
        expected = res.joints2d[b, 0] / 2.0  # render pixels of the framed image -> network pixels
        assert abs(peak[1].item() + 0.5 - expected[0].item()) <= 1.0
        assert abs(peak[0].item() + 0.5 - expected[1].item()) <= 1.0
    assert torch.allclose(res.joints2d, to_frame(joints, zoom, shift, (128, 128)), atol=1e-4)
