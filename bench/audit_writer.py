"""One P10 writer process: append N audit events (or the same rows into a plain table),
each in its own transaction, after a shared start signal. Prints one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(mode: str, n: int, writer: int, go: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from reviewapp.audit.services import record

    connection.ensure_connection()
    (go.parent / f"ready-{mode}-{writer}").touch()
    while not go.exists():
        time.sleep(0.005)
    started = time.time()
    if mode == "audit":
        for i in range(n):
            with transaction.atomic():
                record(
                    "bench.event",
                    actor=None,
                    target=None,
                    changes={"writer": writer, "i": i},
                    workflow_slug="bench",
                )
    else:
        plain = _plain_model()
        for i in range(n):
            with transaction.atomic():
                plain(
                    created_at=timezone.now(),
                    actor=None,
                    actor_ref=None,
                    actor_name="system",
                    action="bench.event",
                    target_type="",
                    target_id="",
                    workflow_slug="bench",
                    changes={"writer": writer, "i": i},
                    request_id="",
                    ip=None,
                    row_mac="0" * 64,
                ).save(force_insert=True)
    print(json.dumps({"start": started, "end": time.time()}), flush=True)


def _plain_model():
    """AuditEvent's fields on a copy of its table that has no triggers: the same rows,
    written the same way (the ORM), without what the audit trail adds."""
    from django.db import models

    from reviewapp.audit.models import AuditEvent

    fields = {f.name: f.clone() for f in AuditEvent._meta.local_fields if f.name != "id"}
    meta = type(
        "Meta", (), {"app_label": "audit", "db_table": "bench_plain_event", "managed": False}
    )
    return type("PlainEvent", (models.Model,), {**fields, "Meta": meta, "__module__": __name__})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
