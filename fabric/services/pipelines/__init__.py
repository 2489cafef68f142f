"""Pipelines: specs (a DAG of template tasks), runs and task runs, the scheduler's pass,
parameter expressions and webhook alerts."""
