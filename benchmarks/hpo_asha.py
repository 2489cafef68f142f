"""What ASHA saves in a search: the `hpo` template's same 16 trials under FIFO and ASHA.

Both searches run the template's `run` on one throw-away local Ray, one after the other,
with the same seed, so random search picks the same 16 configurations of `builtin:example`
(each reports `--iterations` points of a learning curve, sleeping `--seconds` per point,
then its final result). FIFO runs every trial to its end; ASHA stops the weaker ones at its
rungs. Compute is counted as trial-iterations (results reported) and trial-seconds (Tune's
time in each trial); the goal is ASHA reaching FIFO's best score with at least 2x less.

    .venv/bin/python benchmarks/hpo_asha.py [--trials 16] [--iterations 27] [--seconds 0.02]

Prints one JSON line on stdout; progress (Tune's) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fabric.runtime import environment
from jobs import hpo

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "activation": {"_type": "choice", "_value": ["relu", "tanh"]},
}


def _search(folder: Path, scheduler: str, args: argparse.Namespace) -> dict[str, Any]:
    """One search, in a run folder of its own; its compute, best score and wall time."""
    os.environ["FABRIC_RUN_DIR"] = str(folder / scheduler)
    params = hpo.Params.model_validate(
        {
            "search_space": SPACE,
            "trial_args": ["--iterations", str(args.iterations), "--seconds", str(args.seconds)],
            "scheduler": scheduler,
            "max_trials": args.trials,
            "concurrency": args.concurrency,
            # Every trial may report all its points and its final result.
            "max_iterations": args.iterations + 1,
            "seed": args.seed,
        }
    )
    began = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        outputs = hpo.run(params)
    metrics = outputs["metrics"]
    return {
        "best_score": round(outputs["best_score"], 6),
        "best_config": outputs["best_config"],
        "trial_iterations": int(metrics["trial_iterations"]),
        "trial_seconds": round(metrics["trial_seconds"], 2),
        "wall_s": round(time.perf_counter() - began, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=27)
    parser.add_argument("--seconds", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ray

    folder = Path(tempfile.mkdtemp(prefix="fabric-hpo-bench-"))
    os.environ["RAY_AUTH_MODE"] = "disabled"
    granted = {"count": args.concurrency, "resources": {"cpu": 1}}
    os.environ[environment.WORKERS] = json.dumps(granted)
    # Trials mostly sleep: as many logical CPUs as trials at once, whatever the cores.
    ray.init(
        num_cpus=args.concurrency + 1,
        include_dashboard=False,
        _temp_dir=str(folder / "ray"),
        log_to_driver=False,
    )
    try:
        fifo = _search(folder, "fifo", args)
        asha = _search(folder, "asha", args)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    iterations_ratio = fifo["trial_iterations"] / asha["trial_iterations"]
    result = {
        "benchmark": "hpo_asha",
        "trials": args.trials,
        "iterations_per_trial": args.iterations,
        "seconds_per_iteration": args.seconds,
        "concurrency": args.concurrency,
        "fifo": fifo,
        "asha": asha,
        "same_best": fifo["best_score"] == asha["best_score"],
        "iterations_ratio": round(iterations_ratio, 2),
        "seconds_ratio": round(fifo["trial_seconds"] / asha["trial_seconds"], 2),
        "wall_ratio": round(fifo["wall_s"] / asha["wall_s"], 2),
        "goal_ratio_ge_2": iterations_ratio >= 2,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
