"""The `fabric` command: every command group, under one root that reports errors in one line."""

from __future__ import annotations

import typer

from fabric.cli import (
    allocations,
    audit,
    cluster_configs,
    dashboard,
    db,
    embedded,
    endpoints,
    jobs,
    login,
    models,
    pipelines,
    pools,
    projects,
    quotas,
    server,
    templates,
    tokens,
    usage,
    users,
)
from fabric.cli.errors import ErrorLineGroup
from fabric.cli.help import hide_type_tags

hide_type_tags()
app = typer.Typer(
    cls=ErrorLineGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Fabric: a Ray-native machine-learning platform.",
)

app.command()(embedded.up)
app.command()(embedded.down)
app.command()(embedded.status)
app.command("server")(server.serve)
app.add_typer(db.app, name="db")
app.command()(login.login)
app.command()(login.logout)
app.command()(login.whoami)
app.add_typer(users.app, name="user")
app.add_typer(tokens.app, name="token")
app.add_typer(projects.app, name="project")
app.add_typer(quotas.app, name="quota")
app.add_typer(pools.app, name="pool")
app.add_typer(allocations.app, name="allocation")
app.add_typer(templates.app, name="template")
app.add_typer(jobs.app, name="job")
app.add_typer(pipelines.app, name="pipeline")
app.add_typer(models.app, name="model")
app.add_typer(endpoints.app, name="endpoint")
app.add_typer(cluster_configs.app, name="cluster-config")
app.command()(usage.usage)
app.command()(audit.audit)
app.command()(dashboard.dashboard)
