"""How a template's driver joins Ray: the job's cluster inside Fabric, a private one outside.

One rule for every template that starts Ray work (Train, Tune, Data): inside a job, join the
cluster in `RAY_ADDRESS`; on a laptop, start a throw-away local Ray with auth chosen here
(off: it listens on this machine only) rather than left to a plain `ray.init()`, which turns
token auth on and writes `~/.ray/auth_token`. Private and light at import.
"""

from __future__ import annotations

import os
import tempfile

from fabric.runtime import environment

# How often Train's controller checks on its workers; each `ray.train.report` waits for it,
# so Ray's default of 2 s adds seconds to every epoch or boosting round.
HEALTH_CHECK_INTERVAL_S = "0.2"

# What a run's environment passes on to Ray's workers on a local Ray.
FABRIC_VARIABLES = (
    environment.USER_DIR,
    environment.PROJECT_DIR,
    environment.RUN_DIR,
    environment.PROJECT,
    environment.JOB_ID,
    environment.WORKERS,
)


def connect() -> None:
    """Join the job's Ray cluster; outside a job, start a private local one.

    A Fabric job's driver finds its cluster in `RAY_ADDRESS`. On a laptop a throw-away Ray
    starts with its files in a fresh temporary folder, token auth off (it listens on this
    machine only) and Fabric's folders passed on to Train's workers.
    """
    import ray
    from ray.data import DataContext

    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", HEALTH_CHECK_INTERVAL_S)
    # Ray Data's progress bars redraw many times a second: noise in a job's log.
    DataContext.get_current().enable_progress_bars = False
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    passed = {name: os.environ[name] for name in FABRIC_VARIABLES if name in os.environ}
    ray.init(
        address="local",
        include_dashboard=False,
        _temp_dir=tempfile.mkdtemp(prefix="fabric-ray-"),
        runtime_env={"env_vars": passed},
    )
