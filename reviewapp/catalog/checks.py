"""System checks (`manage.py check`) for pools: the configuration, and the workflows that
name a pool. Settings can be wrong without failing at import (a settings module that sets
COMFYUI_POOLS itself, both variables set), and a pool can be taken out of the configuration
while workflows still run in it; these say so before a brief is enqueued where no worker
listens.

Tagged "pools" and, the workflow check, "database": Django passes it the databases to
look at (`check --database default`, `migrate`), and plain `check` touches none.

IDs: reviewapp.E010 a malformed pool configuration, E011 a workflow in a pool that is not
configured, E012 a pool without its RQ queue; W010 a pool without a backend, W011
COMFYUI_URL ignored because COMFYUI_POOLS is set.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks
from django.db import connections, router

from reviewapp.lib.pools import env_shadowed, pool_problems

TAG = "pools"  # manage.py check --tag pools
CONFIGURE = "Set COMFYUI_POOLS as NAME=URL[,URL...];NAME=URL... (see README, Settings)."


@checks.register(TAG)
def check_pool_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    pools = settings.COMFYUI_POOLS
    problems = pool_problems(pools)
    if problems:
        return [
            checks.Error(f"COMFYUI_POOLS: {problem}", hint=CONFIGURE, id="reviewapp.E010")
            for problem in problems
        ]
    messages: list[checks.CheckMessage] = []
    for name, urls in pools.items():
        if not urls:
            messages.append(
                checks.Warning(
                    f"pool {name!r} has no backend: its generations wait until one is added",
                    hint=CONFIGURE,
                    id="reviewapp.W010",
                )
            )
        if name not in settings.RQ_QUEUES:
            messages.append(
                checks.Error(
                    f"pool {name!r} has no RQ queue: RQ_QUEUES has no entry {name!r}",
                    hint="RQ_QUEUES needs one entry per pool (settings.py builds them).",
                    id="reviewapp.E012",
                )
            )
    if env_shadowed(os.environ):
        messages.append(
            checks.Warning(
                "COMFYUI_POOLS and COMFYUI_URL are both set: COMFYUI_URL is ignored",
                hint="Unset COMFYUI_URL, or put its backends in a pool of COMFYUI_POOLS.",
                id="reviewapp.W011",
            )
        )
    return messages


def _has_pool_column(alias: str, table: str) -> bool:
    """The catalog is migrated far enough to hold Workflow.pool: `migrate` runs the checks
    before it migrates, when the table may be missing or still have the old column."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return False
        columns = connection.introspection.get_table_description(cursor, table)
    return any(column.name == "pool" for column in columns)


@checks.register(TAG, checks.Tags.database)
def check_workflow_pools(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Only on the databases asked for (`check --database default`, and `migrate`)."""
    from reviewapp.catalog.models import Workflow

    if not databases or pool_problems(settings.COMFYUI_POOLS):
        return []  # no database asked for; or E010 says what is wrong first
    configured = list(settings.COMFYUI_POOLS)
    messages: list[checks.CheckMessage] = []
    for alias in databases:
        if not router.allow_migrate_model(alias, Workflow):
            continue
        if not _has_pool_column(alias, Workflow._meta.db_table):
            continue
        stray = (
            Workflow.objects.using(alias)
            .exclude(pool__in=configured)
            .order_by("slug")
            .values_list("slug", "pool")
        )
        for slug, pool in stray:
            messages.append(
                checks.Error(
                    f"workflow {slug!r} runs in pool {pool!r}, which is not configured "
                    f"(configured pools: {', '.join(configured)})",
                    hint="Add the pool to COMFYUI_POOLS, or move the workflow to a configured "
                    "pool in the admin.",
                    obj=Workflow,
                    id="reviewapp.E011",
                )
            )
    return messages
