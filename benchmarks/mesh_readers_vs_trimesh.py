"""Our hand-written OFF / OBJ / STL / PLY readers against trimesh's, on the same files: voxels, speed, errors.

    python benchmarks/mesh_readers_vs_trimesh.py [--resolution 32] [--repeats 5]

Why: glTF / GLB and 3MF are read through trimesh (issue 26, item 10); trimesh reads the four older formats
too, and would replace our parsers where it reads them as well: the same voxels on valid files, the same
clean one-line errors on the reliability corpus's broken ones (tests/reliability_corpus.py, mesh cases).

Valid files: shapes of gan_core.data.synthetic meshed by marching cubes (smoothed and not, 32^3 and 64^3),
pyvista spheres up to ~320k triangles, a quad-faced cube, each written in every variant we read (binary and
ASCII STL and PLY, OBJ with quads, texture and normal indices and negative indices, OFF with comments and
ModelNet's 'OFF490 518 0' header). Both readers' triangles go through the same voxeliser.

Broken files: each mesh case of the corpus through trimesh.load_scene (process=False, as read_mesh): an
error, or what it returned. A file trimesh accepts where the corpus expects an error is "lax" (the file
would reach the voxeliser or fail later with a message about something else).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _write_off(path: Path, pts: np.ndarray, faces: np.ndarray, *, modelnet: bool = False) -> Path:
    head = f"OFF{len(pts)} {len(faces)} 0\n" if modelnet else f"OFF\n# made by a test\n{len(pts)} {len(faces)} 0\n"
    body = "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in pts)
    path.write_text(head + body + "".join(f"{len(f)} " + " ".join(map(str, f)) + "\n" for f in faces))
    return path


def _write_obj_rich(path: Path, pts: np.ndarray, faces: np.ndarray, *, negative: bool = False) -> Path:
    """OBJ with vt / vn lines and 'f a/b/c' triples (or negative, relative indices)."""
    lines = ["# rich obj", "o shape"] + [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in pts]
    lines += ["vt 0 0", "vn 0 0 1", "usemtl none"]
    n = len(pts)
    for f in faces:
        if negative:
            lines.append("f " + " ".join(str(i - n) for i in f))
        else:
            lines.append("f " + " ".join(f"{i + 1}/1/1" for i in f))
    path.write_text("\n".join(lines) + "\n")
    return path


def valid_files(d: Path) -> list[Path]:
    import pyvista as pv

    from gan_core.data.synthetic import chair, sphere, table
    from gan_core.mesh import voxels_to_mesh

    shapes: dict[str, pv.PolyData] = {}
    rng = np.random.default_rng(0)
    for i in range(3):
        shapes[f"chair{i}"] = voxels_to_mesh(chair(32, rng=rng))
        shapes[f"table{i}_smooth"] = voxels_to_mesh(table(64, rng=rng), smooth_iterations=10)
    shapes["ball64"] = voxels_to_mesh(sphere(64))
    shapes["sphere_10k"] = pv.Sphere(theta_resolution=100, phi_resolution=50).triangulate()
    shapes["sphere_320k"] = pv.Sphere(theta_resolution=800, phi_resolution=200).triangulate()
    cube_pts = np.array([(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)], float) * [2, 1, 0.5]
    cube_quads = np.array([(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
    out: list[Path] = []
    for name, mesh in shapes.items():
        pts, faces = np.asarray(mesh.points, np.float64), mesh.regular_faces
        mesh.save(d / f"{name}.stl", binary=True)
        mesh.save(d / f"{name}_ascii.stl", binary=False)
        mesh.save(d / f"{name}.ply", binary=True)
        mesh.save(d / f"{name}_ascii.ply", binary=False)
        mesh.save(d / f"{name}.obj")
        out += [d / f"{name}.stl", d / f"{name}_ascii.stl", d / f"{name}.ply", d / f"{name}_ascii.ply",
                d / f"{name}.obj", _write_off(d / f"{name}.off", pts, faces),
                _write_off(d / f"{name}_modelnet.off", pts, faces, modelnet=True),
                _write_obj_rich(d / f"{name}_rich.obj", pts, faces),
                _write_obj_rich(d / f"{name}_negative.obj", pts, faces, negative=True)]
    out += [_write_off(d / "quads.off", cube_pts, cube_quads), _write_obj_rich(d / "quads.obj", cube_pts, cube_quads)]
    return out


def read_trimesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """trimesh's reader, its scene concatenated with transforms applied, no processing (as read_mesh)."""
    import trimesh

    scene = trimesh.load_scene(path, process=False)
    parts = [g for g in scene.dump() if hasattr(g, "faces") and len(g.faces)]
    if not parts:
        raise ValueError("no triangles")
    verts, faces, n = [], [], 0
    for g in parts:
        verts.append(np.asarray(g.vertices, np.float64))
        faces.append(np.asarray(g.faces, np.int64) + n)
        n += len(g.vertices)
    return np.concatenate(verts), np.concatenate(faces)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def compare_valid(d: Path, resolution: int, repeats: int) -> list[str]:
    from gan_core.data.mesh_readers import read_mesh
    from gan_core.data.voxelize import voxelize_mesh

    rows = ["| file | triangles | same voxels | differing voxels | ours (ms) | trimesh (ms) |", "|---|---|---|---|---|---|"]
    same = total = 0
    sums = [0.0, 0.0]
    for p in valid_files(d):
        v1, f1 = read_mesh(p)
        try:
            v2, f2 = read_trimesh(p)
        except Exception as e:  # noqa: BLE001 - a finding, not a failure
            rows.append(f"| {p.name} | {len(f1)} | trimesh failed: {type(e).__name__}: {str(e)[:60]} | | | |")
            total += 1
            continue
        a, b = voxelize_mesh(v1, f1, resolution), voxelize_mesh(v2, f2, resolution)
        diff = int((a != b).sum())
        same += diff == 0
        total += 1
        t1 = _best(lambda: read_mesh(p), repeats)
        t2 = _best(lambda: read_trimesh(p), repeats)
        sums[0] += t1
        sums[1] += t2
        rows.append(f"| {p.name} | {len(f1)} | {'yes' if diff == 0 else 'NO'} | {diff} | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} |")
    rows.append(f"\n{same} of {total} files give the same {resolution}^3 voxels; total read time: ours "
                f"{sums[0] * 1e3:.0f} ms, trimesh {sums[1] * 1e3:.0f} ms ({sums[1] / max(sums[0], 1e-9):.2f}x)")
    return rows


def compare_corpus(d: Path) -> list[str]:
    from gan_core.data.mesh_readers import read_mesh
    from gan_core.errors import Gan3dError
    from tests.reliability_corpus import _mesh_cases

    rows = ["| case | expected | ours | trimesh |", "|---|---|---|---|"]
    lax = loud = 0
    for i, case in enumerate(_mesh_cases()):
        (d / f"c{i}").mkdir()
        p = case.make(d / f"c{i}")
        try:
            v, f = read_mesh(p)
            ours = f"read ({len(f)} triangles)"
        except Gan3dError as e:
            ours = f"{type(e).__name__}: {str(e)[len(str(p)) + 2:][:70]}"
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                v, f = read_trimesh(p)
            theirs = f"read ({len(f)} triangles{', NaN' if not np.isfinite(v).all() else ''})"
            lax += case.expect == "error" and not ours.startswith("read")
        except Exception as e:  # noqa: BLE001 - what escapes is the finding
            theirs = f"{type(e).__name__}: {str(e).splitlines()[0][:70] if str(e) else '(no message)'}"
        if err.getvalue():
            loud += 1
            theirs += " (and printed to stderr)"
        rows.append(f"| {case.name} | {case.expect} | {ours} | {theirs} |")
    rows.append(f"\ntrimesh read {lax} files our readers refuse (truncated, out-of-range or malformed content); "
                f"{loud} printed to stderr")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.getLogger("trimesh").setLevel(logging.ERROR)
    import trimesh

    print(f"trimesh {trimesh.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "valid").mkdir()
        (Path(tmp) / "corpus").mkdir()
        print("\n".join(compare_valid(Path(tmp) / "valid", args.resolution, args.repeats)))
        print()
        print("\n".join(compare_corpus(Path(tmp) / "corpus")))


if __name__ == "__main__":
    main()
