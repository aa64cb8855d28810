"""Workflow.queue becomes Workflow.pool: the same value (a pool's name is its RQ queue's
name), kept in place; new rows default to the first configured pool."""

from django.db import migrations, models

import reviewapp.lib.pools


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_embed_generation_metadata"),
    ]

    operations = [
        migrations.RenameField(model_name="workflow", old_name="queue", new_name="pool"),
        migrations.AlterField(
            model_name="workflow",
            name="pool",
            field=models.CharField(default=reviewapp.lib.pools.default_pool, max_length=64),
        ),
    ]
