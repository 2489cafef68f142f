"""The environment variables of a job, by name: the server writes them
(`fabric.services.jobs.jobs`, when it submits a job) and code on Ray reads them
(`fabric.runtime`, the warm runner, the templates), so each name is spelled here alone.

Light on purpose, like all of `fabric.runtime`: names only, nothing imported.
"""

from __future__ import annotations

# Every name Fabric sets starts so; a job's own runtime env may not set one of these.
PREFIX = "FABRIC_"
# The server's address as the job reaches it, and the file that holds the job's API token.
URL = "FABRIC_URL"
JOB_TOKEN_FILE = "FABRIC_JOB_TOKEN_FILE"
PROJECT = "FABRIC_PROJECT"
JOB_ID = "FABRIC_JOB_ID"
# The folders of the job's user, of its project, and of this run.
USER_DIR = "FABRIC_USER_DIR"
PROJECT_DIR = "FABRIC_PROJECT_DIR"
RUN_DIR = "FABRIC_RUN_DIR"
# The Ray workers granted beside the driver, as JSON (`fabric.runtime.workers()`).
WORKERS = "FABRIC_WORKERS"
# Not set by Fabric: a trial's parameters, as a JSON object, for a run outside Tune.
TRIAL_PARAMETERS = "FABRIC_TRIAL_PARAMETERS"
