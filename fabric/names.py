"""Rules for the names users choose: they become folders, URL parts and Kubernetes names."""

from __future__ import annotations

import re

from fabric.errors import InvalidSpec
from fabric.runtime.names import NAME_PATTERN

# A DNS-1123 label, shorter than the 63-character limit so that Kubernetes objects derived
# from a project (namespace prefix, `-head-svc` suffixes) still fit.
PROJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
PROJECT_NAME_HELP = (
    "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 40 "
    "characters (it becomes a Kubernetes namespace and a URL part)"
)
# Usernames become folders (`users/USER`, `/mnt/USER`).
USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,62}$")
USERNAME_HELP = "2-63 characters: a lowercase letter, then lowercase letters, digits, '_', '.', '-'"
POOL_NAME = PROJECT_NAME
RESOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,62}$")
RESOURCE_NAME_HELP = "a letter, then letters, digits, '_', '.', '/', '-' (e.g. cpu, gpu, npu)"
# Jobs' and models' names (and datasets', which only the templates on Ray check): the pattern
# lives in the worker-side fabric.runtime.names, where the templates read it too.
JOB_NAME = re.compile(NAME_PATTERN)
MODEL_NAME = JOB_NAME


def check(pattern: re.Pattern[str], value: str, what: str, help_text: str) -> str:
    """Return `value` if it matches, or raise InvalidSpec that says what a valid one looks like."""
    if not pattern.match(value):
        raise InvalidSpec(f"invalid {what} {value!r}: use {help_text}")
    return value
