"""Events become insert-only rows with a MAC each; a seal table holds the chain.

Rows written under the plain SHA-256 chain are sealed as epoch 0, in id order, with the
hash they already carry, so they stay verifiable; the first HMAC seal chains onto the
last of them, so rewriting that epoch breaks the first link of the next.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def seal_first_epoch(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditSeal = apps.get_model("audit", "AuditSeal")
    now, seals = timezone.now(), []
    events = AuditEvent.objects.order_by("id").values_list("id", "legacy_hash")
    for seq, (event_id, legacy_hash) in enumerate(events.iterator(chunk_size=5000), 1):
        seals.append(
            AuditSeal(
                seq=seq, event_id=event_id, epoch=0, key_id="", hash=legacy_hash, sealed_at=now
            )
        )
        if len(seals) == 5000:
            AuditSeal.objects.bulk_create(seals)
            seals = []
    AuditSeal.objects.bulk_create(seals)


PG_CREATE = """
-- The sealer orders events by their inserting transaction: the trigger sets it, so no
-- client can choose it.
CREATE OR REPLACE FUNCTION audit_auditevent_txid() RETURNS trigger AS $$
BEGIN
    NEW.txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditevent_txid
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_txid();

CREATE OR REPLACE FUNCTION audit_auditseal_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit seals are append-only (%% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditseal_append_only
    BEFORE UPDATE OR DELETE ON audit_auditseal
    FOR EACH ROW EXECUTE FUNCTION audit_auditseal_append_only();

-- Row triggers do not fire on TRUNCATE. Test suites empty every table between tests
-- with TRUNCATE: they run as a superuser (who could drop these triggers anyway) and say
-- so with SET audit.allow_truncate = 'on'. Any other role is refused, setting or not.
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('audit.allow_truncate', true), '') = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (TRUNCATE of %% refused)', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_auditseal_no_truncate
    BEFORE TRUNCATE ON audit_auditseal
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS audit_auditevent_txid ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_txid();
DROP TRIGGER IF EXISTS audit_auditseal_append_only ON audit_auditseal;
DROP FUNCTION IF EXISTS audit_auditseal_append_only();
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditseal_no_truncate ON audit_auditseal;
DROP FUNCTION IF EXISTS audit_refuse_truncate();
"""


def pg_forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_CREATE)


def pg_backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.RenameField("auditevent", "hash", "legacy_hash"),
        migrations.RenameField("auditevent", "prev_hash", "legacy_prev_hash"),
        migrations.AlterField(
            "auditevent", "legacy_hash", models.CharField(blank=True, max_length=64)
        ),
        migrations.AlterField(
            "auditevent", "legacy_prev_hash", models.CharField(blank=True, max_length=64)
        ),
        migrations.AlterField(
            "auditevent", "target_type", models.CharField(blank=True, max_length=64)
        ),
        migrations.AlterField(
            "auditevent", "target_id", models.CharField(blank=True, max_length=64)
        ),
        migrations.AddField(
            "auditevent",
            "row_mac",
            models.CharField(blank=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            "auditevent",
            "txid",
            models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            "auditevent", models.Index(fields=["txid", "id"], name="audit_txid_idx")
        ),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                (
                    "epoch",
                    models.PositiveSmallIntegerField(
                        choices=[(0, "SHA-256 chain"), (1, "HMAC chain")]
                    ),
                ),
                ("key_id", models.CharField(blank=True, max_length=16)),
                ("hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="seal",
                        to="audit.auditevent",
                    ),
                ),
            ],
            options={"ordering": ["seq"]},
        ),
        migrations.RunPython(seal_first_epoch, migrations.RunPython.noop),
        migrations.DeleteModel(name="AuditChain"),
        migrations.RunPython(pg_forwards, pg_backwards),
    ]
