"""gan3d map and gan3d directions end to end with a tiny16 checkpoint and bank, and their error lines."""

import csv

import numpy as np
import pytest

from gan_core.cli import main
from tests.cli_run import last_json, run_cli
from tests.core_data import tiny_model_with_bank


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tiny_model_with_bank(tmp_path_factory.mktemp("cli_map"))


def test_map_writes_png_csv_npz_and_reuses_its_cache(files, capsys, tmp_path):
    from PIL import Image

    from gan_core.latent_map import LatentMap

    argv = ["map", "--checkpoint", files["ckpt"], "--bank", files["bank"], "--samples", 6, "--pca", 5,
            "--perplexity", 4, "--path", "1,2,3", "--steps", 3, "--mode", "spline", "--cache", tmp_path / "cache",
            "--out", tmp_path / "m.png", "--csv", tmp_path / "m.csv", "--npz", tmp_path / "m.npz"]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 0, err
    res = last_json(out)
    assert res["points"] == 30 and res["bank_shapes"] == 24 and res["samples"] == 6 and res["cached"] is False
    with Image.open(tmp_path / "m.png") as im:
        assert im.format == "PNG"
    rows = list(csv.DictReader(open(tmp_path / "m.csv", encoding="utf-8")))
    assert len(rows) == 30 and {r["class"] for r in rows} <= {"slab", "column"}
    assert LatentMap.load(tmp_path / "m.npz").n_samples == 6
    rc, out, _ = run_cli(capsys, *argv)
    assert rc == 0 and last_json(out)["cached"] is True


def test_directions_write_npz_csv_png_and_measure_sliders(files, capsys, tmp_path):
    from gan_core.directions import load_directions

    rc, out, err = run_cli(capsys, "directions", "--checkpoint", files["ckpt"], "--bank", files["bank"],
                        "--components", 3, "--samples", 60, "--named", 2, "--probe", 3, "--per-class", 2,
                        "--project-steps", 1, "--pairs", "slab:column", "--show", 2, "--base", 4,
                        "--smoothness", 1, "--slider-steps", 3, "--cache", "none",
                        "--out", tmp_path / "d.npz", "--csv", tmp_path / "d.csv", "--png", tmp_path / "d.png")
    assert rc == 0, err
    res = last_json(out)
    names = [d["name"] for d in res["directions"]]
    assert len(names) == 4 and names[2] == "PC3" and names[3] == "slab \u2192 column"
    rates = [d["class_flip_rate"] for d in res["directions"]]
    assert all(r is not None and 0 <= r <= 1 for r in rates[:2] + rates[3:]) and rates[2] is None  # PC3 not shown
    assert set(res["class_projection_iou"]) == {"slab", "column"}
    dirs, means = load_directions(tmp_path / "d.npz")
    assert [d.name for d in dirs] == names and means.means.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(dirs[3].vector), 1.0, atol=1e-5)
    rows = list(csv.DictReader(open(tmp_path / "d.csv", encoding="utf-8")))
    assert [r["name"] for r in rows] == names and rows[0]["explained"] and rows[3]["kind"] == "class"
    assert (tmp_path / "d.png").stat().st_size > 1000


@pytest.mark.parametrize("argv,line", [
    (["map", "--bank", "{bank}", "--checkpoint", "{ckpt}"], "BadInputError: give at least one of --out (PNG), --csv and --npz"),
    (["map", "--checkpoint", "{ckpt}", "--out", "{tmp}/m.png"],
     "BadInputError: --bank is needed with --checkpoint (build one with gan3d features)"),
    (["map", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--out", "{tmp}/m.jpg"], "BadInputError: --out must end in .png, got m.jpg"),
    (["map", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--csv", "{tmp}/m.csv", "--perplexity", "0"],
     "BadInputError: perplexity must be positive, got 0.0"),
    (["map", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--csv", "{tmp}/m.csv", "--path", "3"],
     "BadInputError: --path needs at least two shapes"),
    (["map", "--checkpoint", "{ckpt}", "--bank", "{tmp}/none.h5", "--csv", "{tmp}/m.csv"],
     "BadFileError: --bank {tmp}/none.h5: no such file"),
    (["directions", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--csv", "{tmp}/d.csv", "--pairs", "slab"],
     "BadInputError: --pairs: expected FROM:TO like chair:sofa, got 'slab'"),
    (["directions", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--csv", "{tmp}/d.csv", "--components", "0"],
     "BadInputError: need 1 <= components < samples, got 0 and 2000"),
    (["directions", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--png", "{tmp}/d.png", "--samples", "40",
      "--components", "2", "--named", "0", "--per-class", "0", "--cache", "none"],
     "BadInputError: --base-class 'chair' is not a class of the bank (slab, column)"),
    (["directions", "--checkpoint", "{ckpt}", "--bank", "{bank}", "--csv", "{tmp}/d.csv", "--samples", "40",
      "--components", "2", "--named", "0", "--per-class", "1", "--project-steps", "0", "--pairs", "slab:sofa",
      "--cache", "none"],
     "BadInputError: --pairs: unknown class 'sofa'; known: slab, column"),
])
def test_error_lines(files, capsys, argv, line):
    subst = {k: files[k] for k in ("tmp", "bank", "ckpt")}
    rc, out, err = run_cli(capsys, *[a.format(**subst) for a in argv])
    assert rc == 1 and out == ""
    assert err == line.format(**subst) + "\n"


@pytest.mark.parametrize("cmd", ["map", "directions"])
def test_help_ends_with_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert f"example:\n  gan3d {cmd}" in capsys.readouterr().out
