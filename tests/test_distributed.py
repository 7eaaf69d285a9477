"""Multi-process training through the same command, launched by torchrun (gloo on CPU here)."""

import json
import socket
import subprocess
import sys

from gan_core.checkpoint import load_checkpoint
from tests.core_data import boxes_npz


def _free_port() -> int:
    """A port nothing listens on now (a fixed one fails when another run, or another program, holds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_train_and_checkpoint(tmp_path):
    data = boxes_npz(tmp_path / "d.npz", n=32)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "gan_core.cli", "train", "--data", str(data), "--profile", "tiny16", "--batch-size", "8",
           "--epochs", "1", "--out", str(out), "--precision", "fp32"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    # 32 shapes / (2 processes x 8) = 2 steps; only rank 0 writes
    assert json.loads(res.stdout.strip().splitlines()[-1])["step"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    assert load_checkpoint(out / "latest.pt")["state"]["step"] == 2
