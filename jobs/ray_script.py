"""`ray-script`: run one's own Ray program with the workers the job was granted.

The program runs in the job's working directory (e.g. `--working-dir` uploaded with
`fabric job submit`) and in its environment: `ray.init()` joins the job's Ray cluster, and
`fabric.runtime.workers()` (or the `FABRIC_WORKERS` JSON) says how many workers it may start
and what each may hold; `FABRIC_NUM_WORKERS` and `FABRIC_WORKER_RESOURCES` (one worker's
request in Ray's names, e.g. for `ScalingConfig(resources_per_worker=...)`) spell it out for
programs that do not import Fabric. Outputs it records with `fabric.runtime.write_outputs`
are kept beside the exit code.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from pydantic import BaseModel, Field, model_validator

from fabric import runtime
from jobs import shell

NAME = "ray-script"


class Params(BaseModel):
    script: str | None = Field(
        default=None,
        min_length=1,
        description="a Python file to run, relative to the job's working directory",
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        description="a shell command to run instead of a script, e.g. 'python -m mypkg.train'",
    )
    args: list[str] = Field(default_factory=list, description="arguments passed to the script")

    @model_validator(mode="after")
    def _one_program(self) -> Params:
        if (self.script is None) == (self.command is None):
            raise ValueError("give either script or command")
        if self.command is not None and self.args:
            raise ValueError("args go with script; put a command's arguments in the command")
        return self


def environment(granted: runtime.Workers) -> dict[str, str]:
    """The job's environment, plus the granted workers spelled out for any program."""
    return {
        **os.environ,
        "FABRIC_NUM_WORKERS": str(granted.count),
        "FABRIC_WORKER_RESOURCES": json.dumps(granted.ray_resources()),
    }


def run(params: Params) -> dict[str, Any]:
    granted = runtime.workers()
    print(
        f"{NAME}: {granted.count} workers granted, each with {dict(granted.resources)}",
        flush=True,
    )
    if params.script is not None:
        if not os.path.isfile(params.script):
            raise SystemExit(
                f"{NAME}: no file {params.script} in the working directory {os.getcwd()}; "
                "submit the job with its code as the working directory"
            )
        argv = [sys.executable, params.script, *params.args]
    else:
        argv = ["bash", "-c", params.command]
    return shell.finish(NAME, shell.execute(NAME, argv, environment(granted)))


TEMPLATE = runtime.Template(
    name=NAME,
    group="generic",
    description="Run your own Ray program (a Python file in the job's working directory, or a "
    "command) on the job's Ray cluster, with the workers the job was granted: it reads them "
    "from FABRIC_WORKERS (or fabric.runtime.workers()).",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "exit_code": "the program's exit status (the job fails when it is not 0); beside it, "
        "whatever the program records with fabric.runtime.write_outputs",
    },
    workers=1,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
