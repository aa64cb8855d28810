"""What runs in RQ for a generation, and what keeps it moving.

- ``enqueue``: the one place that puts generation and cancel jobs on a pool's queue.
- ``jobs``: the RQ entry points (they take ids and call plain functions).
- ``backends``: the one module that builds comfybridge objects from Django settings.
- ``execution``: claim a row, submit, follow, hand the outputs to ``ingest``.
- ``dispatch``: keeps each backend's ComfyUI queue from draining (submits ahead).
- ``ingest``: download, check, store and attach outputs, exactly once.
- ``liveness``: heartbeat and progress written onto the row while a run is followed.
- ``failures``: the one deadline-and-failure path shared by jobs and the reconciler.
- ``reconcile``: the database is the ledger; moves on what Redis or a worker forgot.
"""
