"""The ``gan3d`` command. Each subcommand lives in ``gan_core/commands/<name>.py`` and defines:

* ``HELP``: one line for ``gan3d --help``;
* ``EXAMPLE``: a runnable example shown at the end of its ``--help``;
* ``add_arguments(parser)``: its flags (validated before heavy work);
* ``run(args) -> int``: the work; raise a Gan3dError for bad input.

Exit codes: 0 success, 1 a domain error printed as one stderr line ``ErrorName: message``, 2 bad usage,
130 interrupted. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from gan_core import __version__
from gan_core.errors import Gan3dError

# Order is the order shown in --help.
COMMANDS = [
    "train", "train_vae", "sample", "interpolate", "arithmetic", "project", "features", "classify", "retrieve",
    "units", "reconstruct", "evaluate", "evaluate_recon", "convert", "export", "render", "pack", "split", "map", "directions", "bench",
]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except where the help already says what the default is, or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _version() -> str:
    try:
        import torch

        from gan_core.device import describe, pick_device

        return f"gan3d {__version__} (torch {torch.__version__}, device {describe(pick_device())})"
    except Exception as e:  # a broken torch install must not hide the version
        return f"gan3d {__version__} (torch unavailable: {e})"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show versions of gan3d, torch and the device")

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        print(_version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan3d",
        description="3D-GAN / 3D-VAE-GAN (Wu et al., NIPS 2016): train, sample, explore and evaluate 3D shapes.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"gan_core.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"gan_core.commands.{name}":
                continue  # not built yet
            raise
        cmd = name.replace("_", "-")
        p = sub.add_parser(
            cmd,
            help=mod.HELP,
            description=mod.HELP,
            epilog=f"example:\n  {mod.EXAMPLE}",
            formatter_class=_Formatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args._run(args) or 0)
    except Gan3dError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
