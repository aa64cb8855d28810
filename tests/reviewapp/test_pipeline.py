"""Nothing lost, nothing doubled: the job resumes from the row, against real Redis and
simulator processes that forget, fail and restart."""

import contextlib
import threading
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from comfybridge.client import ComfyClient
from comfybridge.contract import stamp_save_prefixes
from comfybridge.sim.process import SimProcess
from reviewapp.briefs import services
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends, execution
from reviewapp.briefs.worker.enqueue import enqueue_generation
from reviewapp.briefs.worker.reconcile import reconcile
from tests.conftest import executions, run_worker
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db


def interrupted(client, prompt_id, timeout=15.0) -> bool:
    """Wait for the backend's history to show the prompt interrupted."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = client.history(prompt_id)
        if entry is not None:
            return entry["status"]["messages"][-1][0] == "execution_interrupted"
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def crashing_backend():
    """A simulator that dies while its first prompt runs and, like a supervised server,
    comes back at once (queue and history gone), to die again on the next one."""
    stop = threading.Event()
    with SimProcess(args=("--crash-after", "1")) as server:

        def supervise():
            while not stop.wait(0.05):
                if not server.alive():
                    server.start()

        thread = threading.Thread(target=supervise, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            stop.set()
            thread.join()


def queued_swatch(operator, **params):
    brief = submit_swatch(operator, **params)
    return brief.generations.get()


def submit_directly(generation, sim):
    """Send the generation's prompt the way a worker that then died would have."""
    generation.mark_submitting(prompt_id=uuid.uuid4(), backend=sim.url, run_timeout_s=60)
    generation.save()
    version = generation.brief.workflow_version
    graph = stamp_save_prefixes(
        version.contract().patch(version.graph, generation.params), generation.prompt_id.hex[:12]
    )
    with ComfyClient(sim.url) as client:
        client.submit(graph, prompt_id=str(generation.prompt_id))
        client.wait(str(generation.prompt_id), timeout=10)
    return generation


def test_a_job_resumes_a_prompt_that_ran_without_submitting_it_again(operator, workflows, sim):
    generation = submit_directly(queued_swatch(operator), sim)
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    assert executions(sim) == [str(generation.prompt_id)]
    assert generation.assets.count() == 1


def test_a_second_run_of_a_finished_job_changes_nothing(operator, workflows, sim):
    generation = queued_swatch(operator)
    execution.run_generation(generation.pk)
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    assert generation.assets.count() == 1 and len(executions(sim)) == 1


def test_a_prompt_lost_in_a_backend_restart_is_sent_again(operator, workflows, sim):
    generation = queued_swatch(operator)
    generation.mark_submitting(prompt_id=uuid.uuid4(), backend=sim.url, run_timeout_s=60)
    generation.mark_running()
    generation.save()
    # The row says running, the backend has never heard of it (it restarted).
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    assert executions(sim) == [str(generation.prompt_id)]


def test_an_unreachable_backend_keeps_the_generation_queued_saying_why(
    operator, workflows, settings
):
    settings.COMFYUI_POOLS = {"default": ("http://127.0.0.1:9",)}  # nothing listens there
    generation = queued_swatch(operator)
    execution.run_generation(generation.pk)  # no RetryLater: nothing was tried
    generation.refresh_from_db()
    assert generation.status == Generation.Status.QUEUED
    assert generation.attempt == 0 and generation.prompt_id is None
    assert generation.waiting_reason.startswith("the only backend in pool default is down")
    # It waits as long as its workflow allows, then fails saying so.
    Generation.objects.filter(pk=generation.pk).update(
        queue_deadline=timezone.now() - timedelta(seconds=1)
    )
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert generation.error.startswith("waited in the queue longer than")


def test_a_backend_lost_mid_run_is_retried_then_given_up_with_the_reason(
    operator, workflows, settings
):
    settings.GENERATION_MAX_ATTEMPTS = 2
    generation = queued_swatch(operator)
    with crashing_backend() as crashing:
        settings.COMFYUI_POOLS = {"default": (crashing.url,)}
        with pytest.raises(execution.RetryLater):
            execution.run_generation(generation.pk)
        generation.refresh_from_db()
        assert generation.status == Generation.Status.QUEUED
        assert "retrying" in generation.error and generation.attempt == 1
        execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert generation.error.startswith("gave up after 2 attempts")


def test_a_runtime_error_fails_at_once_with_the_node_named(operator, workflows, settings, tmp_path):
    with SimProcess(args=("--fail-rate", "1.0")) as failing:
        settings.COMFYUI_POOLS = {"default": (failing.url,)}
        generation = queued_swatch(operator)
        execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert generation.attempt == 1
    assert "node" in generation.error and "failed" in generation.error


def test_the_reconciler_enqueues_what_redis_lost(
    operator, workflows, sim, rq_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation = queued_swatch(operator)
    assert rq_queue.count == 1
    rq_queue.connection.flushdb()  # Redis restarted and lost everything
    assert rq_queue.count == 0
    later = timezone.now() + timedelta(seconds=30)
    report = reconcile(now=later)
    assert report.enqueued == [generation.pk]
    assert reconcile(now=later).enqueued == []  # the job is there now: not enqueued twice
    run_worker(rq_queue)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error


def test_the_reconciler_replaces_the_job_of_a_dead_worker(
    operator, workflows, sim, rq_queue, settings
):
    settings.WORKER_STALE_S = 60
    generation = queued_swatch(operator)
    job = enqueue_generation(generation.pk, generation.pool)
    rq_queue.remove(job)
    job.started_at = timezone.now() - timedelta(seconds=30)
    job.save()
    job.set_status("started")  # claimed by a worker that then died
    generation.mark_submitting(prompt_id=uuid.uuid4(), backend=sim.url, run_timeout_s=600)
    generation.save()
    # It died holding the submission lock (killed between its lookup and its POST).
    lock = backends.redis().lock(f"reviewapp:submit:{generation.pk}", timeout=60)
    assert lock.acquire(blocking=False)
    now = timezone.now()
    assert reconcile(now=now + timedelta(seconds=20)).replaced == []  # still fresh
    report = reconcile(now=now + timedelta(seconds=120))
    assert report.replaced == [generation.pk]
    # The next job does not wait out the dead holder's lock (SUBMIT_LOCK_TTL_S).
    assert not backends.redis().exists(f"reviewapp:submit:{generation.pk}")
    run_worker(rq_queue)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    assert len(executions(sim)) == 1


def test_past_its_deadline_a_generation_fails_with_the_reason(operator, workflows, sim, rq_queue):
    generation = queued_swatch(operator)
    late = generation.queue_deadline + timedelta(seconds=1)
    assert reconcile(now=late).expired == [generation.pk]
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert "waited in the queue longer than 3600 s" in generation.error


def test_a_run_over_its_deadline_is_interrupted_on_the_backend(
    operator, workflows, settings, monkeypatch
):
    # About 1.5 s per node: the interrupt takes effect when the next node starts.
    with SimProcess(step_ms=0, args=("--ms-per-megapixel", "1500")) as slow:
        settings.COMFYUI_POOLS = {"default": (slow.url,)}
        workflow = workflows["color_swatch"]
        workflow.run_timeout_s = 1
        workflow.save()
        generation = queued_swatch(operator, width=1024, height=1024)
        execution.run_generation(generation.pk)
        generation.refresh_from_db()
        assert generation.status == Generation.Status.FAILED
        assert generation.error == "did not finish within 1 s"
        with ComfyClient(slow.url) as client:
            assert interrupted(client, str(generation.prompt_id))


def test_cancelling_a_queued_generation_takes_its_job_off_the_queue(
    operator, workflows, rq_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation = queued_swatch(operator)
    assert rq_queue.count == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_generation(generation, actor=operator)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.CANCELLED
    assert rq_queue.count == 0


def test_cancelling_a_running_generation_interrupts_its_prompt(
    operator, workflows, settings, rq_queue, django_capture_on_commit_callbacks
):
    with SimProcess(step_ms=0, args=("--ms-per-megapixel", "1500")) as slow:
        settings.COMFYUI_POOLS = {"default": (slow.url,)}
        generation = queued_swatch(operator, width=1024, height=1024)
        generation.mark_submitting(prompt_id=uuid.uuid4(), backend=slow.url, run_timeout_s=60)
        generation.save()
        version = generation.brief.workflow_version
        graph = version.contract().patch(version.graph, generation.params)
        with ComfyClient(slow.url) as client:
            client.submit(graph, prompt_id=str(generation.prompt_id))
            with django_capture_on_commit_callbacks(execute=True):
                services.cancel_generation(generation, actor=operator)
            run_worker(rq_queue)  # runs the cancel job
            assert interrupted(client, str(generation.prompt_id))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.CANCELLED


def test_a_job_that_just_started_on_an_old_row_is_not_replaced(operator, workflows, rq_queue):
    generation = queued_swatch(operator)
    Generation.objects.filter(pk=generation.pk).update(
        updated_at=timezone.now() - timedelta(seconds=600)
    )
    job = enqueue_generation(generation.pk, generation.pool)
    rq_queue.remove(job)
    job.started_at = timezone.now()
    job.save()
    job.set_status("started")  # a worker took it a moment ago; the row is old
    assert reconcile().replaced == []


def test_a_job_queued_in_name_only_is_enqueued_again(operator, workflows, rq_queue):
    generation = queued_swatch(operator)
    job = enqueue_generation(generation.pk, generation.pool)
    rq_queue.remove(job)  # taken off the list by a worker that died at once
    assert job.get_status() == "queued"
    report = reconcile(now=timezone.now() + timedelta(seconds=30))
    assert report.enqueued == [generation.pk]
    assert rq_queue.job_ids == [job.id]


def test_a_temporary_failure_is_retried_by_rq_after_its_interval(
    operator, workflows, settings, rq_queue, django_capture_on_commit_callbacks
):
    with crashing_backend() as crashing:
        settings.COMFYUI_POOLS = {"default": (crashing.url,)}
        with django_capture_on_commit_callbacks(execute=True):
            generation = queued_swatch(operator)
        run_worker(rq_queue)
    job = rq_queue.fetch_job(generation.rq_job_id)
    assert job.get_status() == "scheduled"  # RQ runs it again after the first interval
    assert job.retries_left == settings.GENERATION_MAX_ATTEMPTS - 1
    generation.refresh_from_db()
    assert generation.status == Generation.Status.QUEUED and generation.attempt == 1
