"""gan3d units: what one unit of the discriminator responds to (the paper's Figure 8): the shapes of a set that
excite it most, drawn with the voxels that drive it as a heat map on their surface."""

from __future__ import annotations

import argparse
import json

import numpy as np

from gan_core.commands._common import (
    add_model_args, class_list, existing_file, load_model_from_args, output_file, progress_callback,
)

HELP = "show what a unit of the discriminator responds to: its top shapes in a set, with a heat map of the voxels"
EXAMPLE = "gan3d units --layer 2 --unit 115 --data train.npz --top 8 --png unit_2_115.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--list", action="store_true",
                   help="list the discriminator's layers and their units, then exit (no --data needed)")
    p.add_argument("--layer", type=int, default=None,
                   help="hidden block of D, 0 = nearest the input (see --list)")
    p.add_argument("--unit", type=int, default=None, help="unit (channel) of that layer")
    p.add_argument("--data", default=None, help="voxel set (.npz or .h5) whose shapes are ranked")
    p.add_argument("--classes", default=None, help="comma-separated class names to keep (default: all)")
    p.add_argument("--limit", type=int, default=None, help="rank at most this many shapes (the first ones)")
    p.add_argument("--top", type=int, default=8, help="how many of the most exciting shapes to show")
    p.add_argument("--keep-copies", action="store_true",
                   help="rank copies of a shape too (default: a grid equal to a higher-ranked one is skipped; "
                        "ModelNet10 holds some shapes many times over)")
    p.add_argument("--batch-size", type=int, default=64, help="shapes per forward pass")
    p.add_argument("--png", default=None,
                   help="also render the top shapes into this PNG, each coloured by the gradient of the unit's "
                        "response (red: the voxels that drive it)")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line (last line)")


def run(args: argparse.Namespace) -> int:
    from gan_core.errors import BadInputError

    if args.list:
        return _list(args)
    if args.layer is None or args.unit is None or args.data is None:
        missing = [f for f, v in (("--layer", args.layer), ("--unit", args.unit), ("--data", args.data)) if v is None]
        raise BadInputError(f"{', '.join(missing)} needed (or --list to see the layers)")
    if args.top < 1:
        raise BadInputError(f"--top must be >= 1, got {args.top}")
    if args.batch_size < 1:
        raise BadInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    data = existing_file(args.data, "--data")
    png = output_file(args.png, "--png", [".png"])
    from gan_core.data import VoxelDataset
    from gan_core.units import check_unit, render_units, top_shapes, unit_heatmaps

    ds = VoxelDataset(data, classes=class_list(args.classes), limit=args.limit)
    if args.top > len(ds):
        raise BadInputError(f"--top {args.top} exceeds the {len(ds)} shapes of {data.name}")
    model = load_model_from_args(args)
    info = check_unit(model, args.layer, args.unit)
    report = progress_callback(f"scoring layer {args.layer}", "shape")
    try:
        top = top_shapes(model, ds, args.layer, args.unit, args.top, distinct=not args.keep_copies,
                         batch_size=args.batch_size, progress=report)
    finally:
        report.close()
    rows = []
    print(f"layer {info.index} unit {args.unit} of {model.name} ({info.units} units at {info.size}^3, receptive "
          f"field {info.receptive_field} voxels): the {len(top.indices)} {'' if args.keep_copies else 'distinct '}"
          f"shapes of {data.name} that excite it most")
    print(f"  {'rank':>4}  {'index':>6}  {'row':>6}  {'class':<14}  {'response':>9}")
    for rank, (i, s) in enumerate(zip(top.indices, top.scores), 1):
        name = ds.class_names[int(ds.labels[i])]
        row = int(ds.indices[i])
        print(f"  {rank:>4}  {int(i):>6}  {row:>6}  {name:<14}  {float(s):>9.4f}")
        rows.append({"rank": rank, "index": int(i), "row": row, "class": name, "score": float(s)})
    if png is not None:
        grids = ds.read(top.indices)
        heats = unit_heatmaps(model, grids, args.layer, args.unit)
        from gan_core.d_features import prepare_voxels

        shown = prepare_voxels(grids, model.resolution)  # the grids the heat maps are of
        titles = [f"{r['class']} #{r['row']}  {r['score']:.2f}" for r in rows]
        render_units(shown, heats, png, titles=titles, progress=progress_callback("rendering", "shape"))
        print(f"wrote {png}")
    if args.json:
        print(json.dumps({"model": model.name, "data": str(data), "layer": info.index, "unit": args.unit,
                          "units_in_layer": info.units, "n": len(ds), "top": rows,
                          "png": str(png) if png is not None else None}))
    return 0


def _list(args: argparse.Namespace) -> int:
    from gan_core.units import check_unit, layer_infos

    model = load_model_from_args(args)
    check_unit(model, 0)  # a model without a discriminator: one line
    infos = layer_infos(model)
    print(f"discriminator of {model.name} ({model.profile.name}, {model.resolution}^3 input)")
    print(f"  {'layer':>5}  {'units':>5}  {'grid':>6}  {'receptive field':>15}")
    for i in infos:
        print(f"  {i.index:>5}  {i.units:>5}  {f'{i.size}^3':>6}  {f'{i.receptive_field} voxels':>15}")
    if args.json:
        print(json.dumps({"model": model.name, "layers": [
            {"layer": i.index, "units": i.units, "size": i.size, "receptive_field": i.receptive_field}
            for i in infos]}))
    return 0
