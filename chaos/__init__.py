"""The chaos suite: the whole pipeline (real Redis, simulators, RQ workers, reconciler)
under faults, checked for lost, stuck and doubled work.

    python -m chaos [--generations N] [--workers N] [--worker-kills N] ...

See chaos/harness.py for what it starts, which faults it injects and what it checks.
"""
