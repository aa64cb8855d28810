from django.db import migrations, models

import reviewapp.lib.pools


def copy_pool_from_workflow(apps, schema_editor):
    """Rows made before pools existed run where their workflow's queue said."""
    Generation = apps.get_model("briefs", "Generation")
    Workflow = apps.get_model("catalog", "Workflow")
    field = "pool" if any(f.name == "pool" for f in Workflow._meta.get_fields()) else "queue"
    for workflow_id, pool in Workflow.objects.values_list("pk", field):
        Generation.objects.filter(brief__workflow_version__workflow_id=workflow_id).update(
            pool=pool
        )


class Migration(migrations.Migration):
    dependencies = [
        ("briefs", "0006_asset_delivery_copy"),
        ("catalog", "0003_embed_generation_metadata"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="pool",
            field=models.CharField(default=reviewapp.lib.pools.default_pool, max_length=64),
        ),
        migrations.RunPython(copy_pool_from_workflow, migrations.RunPython.noop),
        migrations.AddField(
            model_name="generation",
            name="waiting_reason",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="generation",
            name="submitted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="execution_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="execution_ended_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="ingested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(fields=["pool", "status", "created_at"], name="gen_pool_status_idx"),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(fields=["pool", "-execution_ended_at"], name="gen_pool_recent_idx"),
        ),
    ]
