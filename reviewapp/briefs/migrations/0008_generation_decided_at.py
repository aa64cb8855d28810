from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce


def fill_decided_at(apps, schema_editor):
    """Rows decided before the field existed: the time of their last decision (or their
    last change, for a row decided without one)."""
    Generation = apps.get_model("briefs", "Generation")
    Decision = apps.get_model("review", "Decision")
    last = (
        Decision.objects.filter(generation=OuterRef("pk"), action__in=["approve", "reject"])
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    Generation.objects.filter(status__in=["approved", "rejected"]).update(
        decided_at=Coalesce(Subquery(last), F("updated_at"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("briefs", "0007_pools_and_timings"),
        ("review", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="decided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(fill_decided_at, migrations.RunPython.noop),
    ]
