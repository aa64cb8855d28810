"""A worker keeps the next prompt on its backend while it follows and ingests its own, and
every generation still runs exactly once."""

import pytest

from comfybridge.client import ComfyClient
from comfybridge.sim.process import SimProcess
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import dispatch, execution
from tests.conftest import executions
from tests.reviewapp.factories import submit_swatch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("rq_queue")]


def queued(operator, n):
    return [submit_swatch(operator, color=0x100000 + i).generations.get() for i in range(n)]


def test_a_run_puts_the_next_waiting_generation_on_the_backend(operator, workflows, sim):
    first, second, third = queued(operator, 3)
    execution.run_generation(first.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert first.status == Generation.Status.AWAITING_REVIEW, first.error
    # Submitted ahead while the first ran: it names its prompt and the backend has it.
    assert second.status == Generation.Status.RUNNING
    assert second.backend == sim.url and second.submitted_at is not None
    with ComfyClient(sim.url) as client:
        assert client.locate(str(second.prompt_id)) in ("pending", "running", "done")
    # One ahead, not the whole line.
    assert third.status == Generation.Status.QUEUED and third.prompt_id is None


def test_every_generation_runs_once_when_their_jobs_follow_what_was_sent_ahead(
    operator, workflows, sim
):
    generations = queued(operator, 4)
    for generation in generations:
        execution.run_generation(generation.pk)

    prompts = []
    for generation in generations:
        generation.refresh_from_db()
        assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
        assert generation.assets.count() == 1
        assert generation.attempt == 1
        prompts.append(str(generation.prompt_id))
    # Each prompt executed exactly once on the backend: no job sent its prompt again.
    assert sorted(executions(sim)) == sorted(prompts)


def test_depth_zero_submits_nothing_ahead(operator, workflows, sim, settings):
    settings.WORKER_SUBMIT_AHEAD = 0
    first, second = queued(operator, 2)
    execution.run_generation(first.pk)
    second.refresh_from_db()
    assert second.status == Generation.Status.QUEUED and second.prompt_id is None


def test_a_backend_with_a_full_queue_gets_nothing_more(operator, workflows, settings, rq_queue):
    # About a second per 64x64 swatch: the queue cannot drain while the test looks.
    with SimProcess(args=("--ms-per-megapixel", "120000")) as slow:
        settings.COMFYUI_POOLS = {"default": (slow.url,)}
        generations = queued(operator, 4)
        assert dispatch.submit_ahead("default") == [generations[0].pk]
        # One running, and room for one pending (WORKER_SUBMIT_AHEAD = 1).
        assert dispatch.submit_ahead("default") == [generations[1].pk]
        assert dispatch.submit_ahead("default") == []
        with ComfyClient(slow.url) as client:
            assert client.queue_remaining() == 2
        generations[2].refresh_from_db()
        assert generations[2].status == Generation.Status.QUEUED


def test_a_cancelled_generation_is_not_sent_ahead(operator, workflows, sim):
    from reviewapp.briefs import services

    first, second, third = queued(operator, 3)
    services.cancel_generation(second, actor=operator)
    execution.run_generation(first.pk)
    third.refresh_from_db()
    second.refresh_from_db()
    assert second.status == Generation.Status.CANCELLED and second.prompt_id is None
    assert third.status == Generation.Status.RUNNING


def test_a_generation_cancelled_between_its_claim_and_its_post_is_stopped_on_the_backend(
    operator, workflows, settings, rq_queue
):
    from reviewapp.briefs import services
    from reviewapp.briefs.worker import submit

    # About ten seconds per swatch: the second prompt waits behind the first.
    with SimProcess(args=("--ms-per-megapixel", "1200000")) as slow:
        settings.COMFYUI_POOLS = {"default": (slow.url,)}
        first, second = queued(operator, 2)
        assert dispatch.submit_ahead("default") == [first.pk]
        run = dispatch._claim_next("default", 1)
        assert run.generation.pk == second.pk
        # The operator cancels while the POST is on its way; the cancel job (not run
        # here) could not have found the prompt yet.
        services.cancel_generation(second, actor=operator)
        submit.submit(run)
        with ComfyClient(slow.url) as client:
            assert client.locate(str(run.generation.prompt_id)) is None
    second.refresh_from_db()
    assert second.status == Generation.Status.CANCELLED
