"""RQ entry points. They take primary keys (or plain values) and call plain functions;
``enqueue`` names them by dotted path, so this module imports what it runs and nothing
imports it."""

from __future__ import annotations

from reviewapp.briefs.worker import backends, execution


def run_generation(generation_id: int) -> None:
    execution.run_generation(generation_id)


def cancel_prompt(backend: str, prompt_id: str) -> str:
    """Remove or interrupt (targeted) one prompt on its backend."""
    with backends.client_for(backend) as client:
        return client.cancel(prompt_id)
