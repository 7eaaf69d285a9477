"""Running ``gan3d`` in-process in CLI tests: exit code, stdout and stderr of one command."""

from __future__ import annotations

import json

import pytest

from gan_core.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``gan3d ARGV...`` (arguments str()-ed): (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def last_json(out: str) -> dict:
    """The JSON record a command prints last on stdout."""
    return json.loads(out.strip().splitlines()[-1])
