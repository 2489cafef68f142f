"""What Ray Train adds to PyTorch DDP: the `pytorch` template against `torchrun`, one run each.

The same MLP (the template's built-in one), data (a synthetic classification table written
to Parquet), epochs, batch size and learning rate go, on two CPU workers, through:

- the `pytorch` template's run function, in this process, on a private local Ray that it
  starts itself (free ports, token auth off, files in a temporary folder), with the job's
  folders in a temporary FABRIC_RUN_DIR: Ray Data shards, DDP, a checkpoint and a report
  each epoch;
- `torchrun --nproc_per_node 2` on a plain DDP script (this file, `--ddp`): each rank reads
  the Parquet file and takes its half, rank 0 saves a checkpoint each epoch.

Per-epoch time is the median between consecutive epochs' ends (the template's as its
reports reached the job's metrics, torchrun's as rank 0 finished them); fixed startup is the
wall time less the epochs'. The ratio is torchrun's per-epoch time over the template's (the
goal: at least 0.95).

    .venv/bin/python benchmarks/train_overhead.py [--rows 40000] [--epochs 6]

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = 16
HIDDEN = [128, 128]
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WORKERS = 2


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dataset(folder: Path, rows: int) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    values = rng.normal(size=(rows, FEATURES)).astype("float32")
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = (values[:, :4].sum(axis=1) > 0).astype(int)
    path = folder / "data.parquet"
    frame.to_parquet(path)
    return path


def _per_epoch(ends: list[float]) -> float:
    return statistics.median(b - a for a, b in itertools.pairwise(ends))


def _template(dataset: Path, folder: Path, epochs: int) -> dict[str, float]:
    """The `pytorch` template's run function on a local Ray it starts."""
    os.environ["FABRIC_RUN_DIR"] = str(folder / "run")
    os.environ["FABRIC_PROJECT_DIR"] = str(folder / "project")
    os.environ["FABRIC_USER_DIR"] = str(folder / "user")
    os.environ["FABRIC_WORKERS"] = json.dumps({"count": WORKERS, "resources": {"cpu": 1}})
    from fabric import runtime
    from jobs import pytorch

    params = pytorch.Params(
        dataset=str(dataset),
        target="label",
        epochs=epochs,
        hidden_sizes=HIDDEN,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        validation_fraction=0.1,
    )
    began = time.perf_counter()
    began_epoch = time.time()
    outputs = pytorch.run(params)
    wall = time.perf_counter() - began
    ends = [line["time"] for line in runtime.read_metrics() if "epoch" in line]
    per_epoch = _per_epoch(ends)
    return {
        "wall_s": wall,
        "per_epoch_s": per_epoch,
        "fixed_startup_s": wall - per_epoch * epochs,
        "first_epoch_end_s": ends[0] - began_epoch,
        "validation_accuracy": outputs["metrics"]["accuracy"],
    }


def _torchrun(dataset: Path, folder: Path, epochs: int) -> dict[str, float]:
    """The same training as a plain DDP script under torchrun."""
    report = folder / "torchrun.json"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORKERS)),
        *("--master_addr", "127.0.0.1", "--master_port", str(_free_port())),
        *(__file__, "--ddp", "--dataset", str(dataset), "--epochs", str(epochs)),
        *("--report", str(report), "--checkpoints", str(folder / "ddp")),
    ]
    began = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - began
    ends = json.loads(report.read_text())["ends"]
    per_epoch = _per_epoch(ends)
    return {"wall_s": wall, "per_epoch_s": per_epoch, "fixed_startup_s": wall - per_epoch * epochs}


def _ddp(args: argparse.Namespace) -> None:
    """One torchrun rank: its half of the training split, the template's model, DDP on gloo."""
    import pandas as pd
    import torch
    import torch.distributed as dist
    from sklearn.model_selection import train_test_split

    from jobs.pytorch import build_mlp

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    frame = pd.read_parquet(args.dataset)
    train, valid = train_test_split(frame, test_size=0.1, random_state=0)
    features = [c for c in frame.columns if c != "label"]
    values = train[features].to_numpy(dtype="float64")
    part = train.iloc[rank::world]
    x = torch.tensor(part[features].to_numpy(dtype="float32"))
    y = torch.tensor(part["label"].to_numpy(), dtype=torch.long)
    held_out = valid.iloc[rank::world]
    x_valid = torch.tensor(held_out[features].to_numpy(dtype="float32"))
    y_valid = torch.tensor(held_out["label"].to_numpy(), dtype=torch.long)
    torch.manual_seed(rank)
    model = torch.nn.parallel.DistributedDataParallel(
        build_mlp(len(features), HIDDEN, 2, values.mean(axis=0), values.std(axis=0))
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_of = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=BATCH_SIZE, shuffle=True
    )
    Path(args.checkpoints).mkdir(parents=True, exist_ok=True)
    ends = []
    for epoch in range(1, args.epochs + 1):
        for batch_x, batch_y in loader:
            optimizer.zero_grad()
            loss_of(model(batch_x), batch_y).backward()
            optimizer.step()
        # As the template does: the validation loss, summed over the ranks.
        with torch.no_grad():
            total = torch.tensor([loss_of(model(x_valid), y_valid).item() * len(x_valid)])
        dist.all_reduce(total)
        if rank == 0:
            state = {"model": model.module.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save({**state, "epoch": epoch}, Path(args.checkpoints) / f"epoch-{epoch}.pt")
            ends.append(time.time())
    if rank == 0:
        Path(args.report).write_text(json.dumps({"ends": ends}))
    dist.destroy_process_group()


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 3) for name, value in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--ddp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp:
        _ddp(args)
        return

    folder = Path(tempfile.mkdtemp(prefix="fabric-train-bench-"))
    dataset = _dataset(folder, args.rows)
    _log(f"torchrun: {WORKERS} processes, {args.epochs} epochs, {args.rows} rows")
    direct = _torchrun(dataset, folder, args.epochs)
    _log(f"pytorch template: {WORKERS} Ray Train workers on a local Ray")
    template: dict[str, Any] = _template(dataset, folder, args.epochs)
    result = {
        "benchmark": "train_overhead",
        "mode": "template run function on a local Ray started by the script",
        "workers": WORKERS,
        "epochs": args.epochs,
        "rows": args.rows,
        "template": _rounded(template),
        "torchrun": _rounded(direct),
        "per_epoch_ratio": round(direct["per_epoch_s"] / template["per_epoch_s"], 3),
        "added_startup_s": round(template["fixed_startup_s"] - direct["fixed_startup_s"], 3),
    }
    result["goal_per_epoch_ratio_ge_0_95"] = result["per_epoch_ratio"] >= 0.95
    print(json.dumps(result))


if __name__ == "__main__":
    main()
