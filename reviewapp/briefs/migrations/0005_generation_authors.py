from django.conf import settings
from django.db import migrations, models


def backfill_authors(apps, schema_editor):
    """Authors of the existing generations, by the rule of briefs.services.authors_of_child
    (copied: a migration must not change when the code does): the brief's submitter,
    plus whoever regenerated with a parameter other than the seed changed, down the lineage.
    """
    Generation = apps.get_model("briefs", "Generation")
    Authors = Generation.authors.through
    rows, brief_id, authors, params = [], None, {}, {}
    generations = Generation.objects.order_by("brief_id", "id").values_list(
        "id", "brief_id", "brief__created_by_id", "parent_id", "created_by_id", "params"
    )
    for pk, brief, submitter, parent, creator, own_params in generations.iterator(2000):
        if brief != brief_id:  # one brief's lineage at a time keeps memory flat
            brief_id, authors, params = brief, {}, {}
        mine = {submitter}
        if parent in authors:
            mine |= authors[parent]
            old = params[parent]
            names = (set(old) | set(own_params)) - {"seed"}
            if any(old.get(n) != own_params.get(n) for n in names):
                mine.add(creator)
        authors[pk], params[pk] = mine, own_params
        rows.extend(Authors(generation_id=pk, user_id=user) for user in mine)
        if len(rows) >= 2000:
            Authors.objects.bulk_create(rows)
            rows = []
    Authors.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("briefs", "0004_brief_list_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="authors",
            field=models.ManyToManyField(
                blank=True, related_name="authored_generations", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.RunPython(backfill_authors, migrations.RunPython.noop),
    ]
