"""Single-image reconstruction: image loading of every common kind, framing, encoding, metrics, and the
reconstruct / evaluate-recon commands (one-line errors, exit 1)."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.checkpoint import save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadFileError, BadInputError, Gan3dError
from gan_core.models import Discriminator, Generator, ImageEncoder
from gan_core.image_input import FRAME_MARGIN, encode_image, load_image
from gan_core.reconstruct import average_precision, best_rotation_iou, iou, reconstruct
from gan_core.runtime import load_model
from tests.cli_run import run_cli

S = 64  # tiny16's image_size

pytestmark = pytest.mark.usefixtures("one_thread")


def _picture(w=120, h=80):
    """A red rectangle off-centre on white: (h, w, 3) uint8."""
    a = np.full((h, w, 3), 255, np.uint8)
    a[10:40, 70:100] = (200, 30, 30)
    return a


def _png(im: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _object_box(x):
    """Rows / cols of the non-white pixels of a loaded image (3, S, S)."""
    diff = np.abs(x - 1.0).max(axis=0) > 0.2
    r, c = np.flatnonzero(diff.any(1)), np.flatnonzero(diff.any(0))
    return r[0], r[-1], c[0], c[-1]


@pytest.mark.parametrize("mode,fmt", [("RGB", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"),
                                      ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("1", "PNG"), ("RGB", "JPEG"),
                                      ("I;16", "PNG"), ("F", "TIFF")])
def test_load_image_accepts_common_modes(mode, fmt, tmp_path):
    pic = _picture()
    if mode == "I;16":
        im = Image.fromarray((pic[..., 1].astype(np.uint16) * 257))  # 16-bit grey
    else:
        im = Image.fromarray(pic).convert(mode)
    path = tmp_path / f"img.{fmt.lower()}"
    im.save(path, fmt)
    x = load_image(path, S)
    assert x.shape == (3, S, S) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    # cropped to the object and centred: the square object fills the frame up to the margin
    r0, r1, c0, c1 = _object_box(x)
    m = FRAME_MARGIN * S
    tol = 5 if fmt == "JPEG" else 2  # JPEG's chroma subsampling bleeds colour a pixel or two past the edges
    assert max(abs(r0 - m), abs(c0 - m), abs(S - 1 - r1 - m), abs(S - 1 - c1 - m)) <= tol


def test_rgba_transparency_is_composited_over_white():
    a = np.zeros((40, 40, 4), np.uint8)  # transparent black everywhere...
    a[10:30, 10:30] = (0, 0, 255, 255)  # ...but an opaque blue square
    x = load_image(Image.fromarray(a, "RGBA"), S)
    assert np.allclose(x[:, 0, 0], 1.0)  # the transparent border became white
    assert x[2, S // 2, S // 2] > 0.9 and x[0, S // 2, S // 2] < 0.1


def test_arrays_of_all_layouts_and_16_bit():
    pic = _picture()
    grey16 = (pic[..., 0].astype(np.uint16) * 257)
    for arr in (pic, pic.transpose(2, 0, 1), pic[..., 0], pic.astype(np.float32) / 255, grey16,
                np.dstack([pic, np.full(pic.shape[:2], 255, np.uint8)])):
        x = load_image(arr, S)
        assert x.shape == (3, S, S)
    assert np.allclose(load_image(pic, S), load_image(Image.fromarray(pic), S))


def test_aspect_and_busy_background_keep_whole_image():
    rng = np.random.default_rng(0)
    noise = (rng.random((50, 200, 3)) * 255).astype(np.uint8)  # no plain background: no crop, pad to square
    x = load_image(noise, S)
    assert x.shape == (3, S, S)


@pytest.mark.parametrize("bad,match", [
    (b"this is not an image", "not an image file"),
    (Image.new("RGB", (1, 1)), "too small"),
    (np.zeros((4, 4, 3), np.uint8), "too small"),
])
def test_unusable_images_are_one_line_errors(bad, match):
    with pytest.raises(BadFileError, match=match) as e:
        load_image(bad, S)
    assert "\n" not in str(e.value)


def test_missing_truncated_and_bad_arrays(tmp_path):
    with pytest.raises(BadFileError, match="no such image"):
        load_image(tmp_path / "nope.png", S)
    data = _png(Image.fromarray(_picture()))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadFileError, match="truncated or corrupt|cannot read"):
        load_image(tmp_path / "cut.png", S)
    with pytest.raises(BadInputError, match="NaN"):
        load_image(np.full((20, 20), np.nan), S)
    with pytest.raises(BadInputError, match="shape"):
        load_image(np.zeros((20, 20, 5)), S)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (a decompression bomb's header), CRC fixed up."""
    import struct
    import zlib

    data = bytearray(_png(Image.new("L", (16, 16))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("w,h", [(8000, 7000), (20000, 20000), (100000, 100000)])
def test_decompression_bombs_are_refused_not_decoded(w, h):
    with pytest.raises(BadFileError, match="megapixels") as e:
        load_image(_png_claiming(w, h), S)
    assert "\n" not in str(e.value)


def test_large_jpeg_is_decoded_at_reduced_scale():
    im = Image.new("RGB", (8200, 6200), "white")  # 51 MP
    im.paste((30, 30, 200), (3000, 2000, 5000, 4000))
    x = load_image(_png(im, "JPEG"), S)
    assert x.shape == (3, S, S) and x[2, S // 2, S // 2] > 0.6


# -- encoder and reconstruction ----------------------------------------------------------------------------
def _vaegan_checkpoint(path, with_encoder=True):
    p = get_profile("tiny16")
    torch.manual_seed(0)
    g = Generator(p)
    with torch.no_grad():
        g.net[-2].bias.fill_(1.0)  # an untrained G gives 0.5 everywhere; this one gives a solid, meshable shape
    models = {"generator": g, "discriminator": Discriminator(p)}
    if with_encoder:
        models["encoder"] = ImageEncoder(p)
    return save_checkpoint(path, profile=p, kind="vaegan" if with_encoder else "gan", models=models)


def test_encode_image_gives_posterior_mean_in_eval_mode():
    p = get_profile("tiny16")
    enc = ImageEncoder(p).train()
    z1 = encode_image(enc, _picture())
    z2 = encode_image(enc, Image.fromarray(_picture()))
    assert z1.shape == (p.z_dim,) and z1.dtype == np.float32
    assert np.allclose(z1, z2, atol=1e-5)  # deterministic: the mean, not a sample; eval-mode BatchNorm
    assert enc.training  # mode restored


def test_reconstruct_with_runtime_model(tmp_path):
    model = load_model(_vaegan_checkpoint(tmp_path / "v.pt"), device="cpu", precision="fp32")
    voxels, z = reconstruct(model, _picture())
    assert voxels.shape == (16, 16, 16) and voxels.dtype == np.float32 and z.shape == (32,)
    assert 0 <= voxels.min() and voxels.max() <= 1
    gan_only = load_model(_vaegan_checkpoint(tmp_path / "g.pt", with_encoder=False), device="cpu")
    with pytest.raises(Gan3dError, match="no image encoder"):
        reconstruct(gan_only, _picture())


def test_metrics():
    rng = np.random.default_rng(0)
    true = rng.random((16, 16, 16)) > 0.7
    assert iou(true, true) == 1.0 and iou(np.zeros_like(true), np.zeros_like(true)) == 1.0
    rotated = np.rot90(true, 3, axes=(0, 1)).astype(np.float32)
    best, k = best_rotation_iou(rotated, true)
    assert best == 1.0 and k == 1
    assert iou(rotated > 0.5, true) < 0.5
    assert average_precision(true.astype(np.float32), true) == pytest.approx(1.0)
    noise = rng.random(true.shape)
    assert average_precision(noise, true) < 0.5
    assert np.isnan(average_precision(noise, np.zeros_like(true)))


# -- CLI ---------------------------------------------------------------------------------------------------
def test_reconstruct_cli_writes_npz_and_meshes(tmp_path, capsys):
    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    img = tmp_path / "chair.png"
    Image.fromarray(_picture()).save(img)
    rc, out, _ = run_cli(capsys, "reconstruct", "--checkpoint", str(ck), "--image", str(img), "--out",
                      str(tmp_path / "r.npz"), "--device", "cpu")
    assert rc == 0 and json.loads(out)["resolution"] == 16
    with np.load(tmp_path / "r.npz") as f:
        assert f["voxels"].shape == (16, 16, 16) and f["voxels"].dtype == np.uint8 and f["z"].shape == (32,)
    rc, out, err = run_cli(capsys, "reconstruct", "--checkpoint", str(ck), "--image", str(img), "--out",
                        str(tmp_path / "r.stl"), "--device", "cpu")
    assert rc == 0 and (tmp_path / "r.stl").stat().st_size > 0, err


def test_reconstruct_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    ck = _vaegan_checkpoint(tmp_path / "v.pt")
    gan = _vaegan_checkpoint(tmp_path / "g.pt", with_encoder=False)
    img = tmp_path / "x.png"
    Image.fromarray(_picture()).save(img)
    notimg = tmp_path / "notes.png"
    notimg.write_text("hello")
    cases = [
        (["--checkpoint", str(ck), "--image", str(img), "--out", str(tmp_path / "r.txt")],
         "BadInputError: --out must end in .npz, .stl, .obj, .ply, got r.txt"),
        (["--checkpoint", str(ck), "--image", str(tmp_path / "missing.png"), "--out", str(tmp_path / "r.npz")],
         f"BadFileError: --image {tmp_path / 'missing.png'}: no such file"),
        (["--checkpoint", str(ck), "--image", str(notimg), "--out", str(tmp_path / "r.npz")],
         f"BadFileError: {notimg}: not an image file Pillow can read (PNG, JPEG, BMP, TIFF, WebP, ...)"),
        (["--checkpoint", str(tmp_path / "nope.pt"), "--image", str(img), "--out", str(tmp_path / "r.npz")],
         f"BadFileError: --checkpoint {tmp_path / 'nope.pt'}: no such file"),
        (["--checkpoint", str(gan), "--image", str(img), "--out", str(tmp_path / "r.npz")],
         f"Gan3dError: --checkpoint {gan}: has no image encoder (a 3D-GAN checkpoint?); "
         "train one with `gan3d train-vae`"),
    ]
    for argv, line in cases:
        rc, out, err = run_cli(capsys, "reconstruct", *argv, "--device", "cpu")
        assert rc == 1 and err.strip() == line and out == ""
    monkeypatch.setattr("gan_core.runtime.REGISTRY", tmp_path / "none.json")
    monkeypatch.setattr("gan_core.runtime.list_models", lambda registry=tmp_path / "none.json": [])
    rc, _, err = run_cli(capsys, "reconstruct", "--image", str(img), "--out", str(tmp_path / "r.npz"))
    assert rc == 1 and err.strip().startswith("Gan3dError: no bundled model") and err.count("\n") == 1


def test_evaluate_recon_cli_errors_are_one_line(tmp_path, capsys):
    gan = _vaegan_checkpoint(tmp_path / "g.pt", with_encoder=False)
    from tests.core_data import boxes_npz

    data = boxes_npz(tmp_path / "b.npz")
    rc, _, err = run_cli(capsys, "evaluate-recon", "--checkpoint", str(gan), "--data", str(data), "--device", "cpu")
    assert rc == 1 and err.startswith("Gan3dError: --checkpoint") and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "evaluate-recon", "--checkpoint", str(gan), "--data", str(data), "--n", "0")
    assert rc == 1 and err.strip() == "BadInputError: --n must be >= 1, got 0"


@pytest.mark.render
def test_reconstruct_a_synthetic_render_and_evaluate(tmp_path, capsys):
    from gan_core.data.render import render_shapes
    from gan_core.data.synthetic import chair

    model = load_model(_vaegan_checkpoint(tmp_path / "v.pt"), device="cpu", precision="fp32")
    images, az, el = render_shapes(chair(16)[None], views=2, size=S, seed=3)
    assert images.shape == (1, 2, S, S, 3)
    voxels, z = reconstruct(model, images[0, 0])
    assert voxels.shape == (16, 16, 16) and z.shape == (32,)
    from gan_core.data.synthetic import make_synthetic_dataset, save_npz

    data = save_npz(tmp_path / "s.npz", *make_synthetic_dataset(1, resolution=16, classes=["chair", "table"]))
    rc, out, err = run_cli(capsys, "evaluate-recon", "--checkpoint", str(tmp_path / "v.pt"), "--data", str(data),
                        "--n", "2", "--json", "--device", "cpu", "--renders", str(tmp_path / "ev.h5"))
    assert rc == 0, err
    res = json.loads(out)
    assert res["n_shapes"] == 2 and 0 <= res["iou"] <= 1 and 0 <= res["ap"] <= 1
    assert set(res["per_class"]) == {"chair", "table"} and res["source"].startswith("all shapes")


def test_mean_shape_baseline_scores_a_fixed_blob_of_the_typical_size():
    """The baseline evaluate-recon prints beside a model: the mean training grid, cut to the average shape's
    size. Shapes equal to it score 1; a thin class whose mean never reaches 0.5 still gets a blob, not nothing."""
    from gan_core.reconstruct import mean_shape_baseline

    box = np.zeros((8, 8, 8), np.uint8)
    box[2:6, 2:6, 1:4] = 1
    same = mean_shape_baseline(box.astype(np.float32), np.stack([box, box]))
    assert same["iou"] == pytest.approx(1.0) and same["ap"] == pytest.approx(1.0)
    shifted = [np.roll(box, s, axis=0) for s in (-2, -1, 0, 1, 2)]  # a thin class: the mean is 0.2-1 per voxel
    mean = np.mean(shifted, axis=0)
    base = mean_shape_baseline(mean, np.stack(shifted))
    assert base["level"] < 0.9 and ((mean > base["level"]).sum() == pytest.approx(box.sum(), rel=0.5))
    assert 0.3 < base["iou"] < 1 and 0 < base["ap"] <= 1
