"""gan3d export: one voxel shape -> a mesh (.stl/.obj/.ply/.glb/.gltf/.3mf) or a voxel file (.binvox/.npy/.npz)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_core.commands._common import add_size_arg, check_size

HELP = "export one shape (any voxel or mesh file, or one shape of a set) as a mesh or voxel file"
EXAMPLE = "gan3d export samples.npz --index 3 --out chair3.stl --smooth 10"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="voxel file (.binvox .npy .npz .h5 .mat) or mesh (.off .obj .stl .ply .glb .gltf .3mf)")
    p.add_argument("--out", required=True, help="output .stl, .obj, .ply, .glb, .gltf, .3mf (mesh) or .binvox, .npy, .npz (voxels)")
    p.add_argument("--index", type=int, default=None, help="which shape of a set (npz/h5/npy with N shapes)")
    p.add_argument("--level", type=float, default=0.5, help="occupancy threshold / iso-level")
    p.add_argument("--smooth", type=int, default=0, help="Taubin smoothing iterations (mesh outputs)")
    p.add_argument("--no-largest-component", action="store_true",
                   help="keep every connected piece instead of only the largest (the paper shows the largest)")
    p.add_argument("--resolution", type=int, default=None,
                   help="resample to this grid size first (default: the file's own; meshes are voxelised at 32)")
    add_size_arg(p)


def run(args: argparse.Namespace) -> int:
    from gan_core.data.importers import load_voxels
    from gan_core.errors import BadInputError
    from gan_core.mesh import MESH_FORMATS, VOXEL_FORMATS

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in MESH_FORMATS + VOXEL_FORMATS:
        raise BadInputError(f"--out must end in one of {', '.join(MESH_FORMATS + VOXEL_FORMATS)}, got {out.name!r}")
    if not 0 < args.level < 1:
        raise BadInputError(f"--level must be in (0, 1), got {args.level}")
    if args.smooth < 0:
        raise BadInputError(f"--smooth must be >= 0, got {args.smooth}")
    if args.smooth and suffix in VOXEL_FORMATS:
        raise BadInputError(f"--smooth applies to mesh outputs only, not {suffix}")
    if args.index is not None and args.index < 0:
        raise BadInputError(f"--index must be >= 0, got {args.index}")
    if args.resolution is not None and not 2 <= args.resolution <= 512:
        raise BadInputError(f"--resolution must be in 2..512, got {args.resolution}")
    if check_size(args.size_mm) is not None and suffix in VOXEL_FORMATS:
        raise BadInputError(f"--size-mm applies to mesh outputs only, not {suffix}")

    grid = load_voxels(args.input, args.resolution, index=args.index, binarize=False)
    keep_largest = not args.no_largest_component
    summary: dict[str, object] = {"out": str(out), "resolution": int(grid.shape[0])}
    if suffix in MESH_FORMATS:
        from gan_core.mesh import export_mesh, voxels_to_mesh

        mesh = voxels_to_mesh(grid, args.level, largest_component=keep_largest, smooth_iterations=args.smooth)
        if mesh.n_cells == 0:
            raise BadInputError(f"{args.input}: the shape is empty at --level {args.level}; nothing to export")
        export_mesh(mesh, out, size=args.size_mm)
        summary.update(faces=int(mesh.n_cells), points=int(mesh.n_points), size_mm=args.size_mm)
    else:
        from gan_core.mesh import export_voxels, largest_component

        occ = grid > args.level
        if keep_largest:
            occ = largest_component(occ)
        export_voxels(occ, out)
        summary.update(occupied=int(occ.sum()))
    print(json.dumps(summary))
    return 0
