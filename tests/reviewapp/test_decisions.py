import uuid

import pytest
from django.urls import reverse

from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.review import services
from reviewapp.review.models import Decision
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def test_a_workflow_can_require_two_distinct_approvals(operator, reviewer, workflows):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    generation = awaiting_generation(operator)
    services.approve(generation, actor=reviewer)
    services.approve(generation, actor=reviewer)  # the same reviewer again counts once
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    services.approve(generation, actor=make_user("second", "reviewer"))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED
    assert generation.decisions.filter(action="approve").count() == 2
    actions = list(
        AuditEvent.objects.filter(target_id=str(generation.pk)).values_list("action", flat=True)
    )
    assert actions.count("generation.approval") == 1 and "generation.approved" in actions


def test_the_same_key_never_makes_two_decisions(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    key = uuid.uuid4()
    first = services.regenerate(generation, actor=reviewer, key=key)
    second = services.regenerate(generation, actor=reviewer, key=key)
    assert first == second
    assert generation.children.count() == 1


def test_a_double_posted_reject_is_one_decision(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    key = str(uuid.uuid4())
    url = reverse("generation_reject", args=[generation.pk])
    client.post(url, {"key": key, "tags": ["Off-brand"], "reason": ""})
    client.post(url, {"key": key, "tags": ["Off-brand"], "reason": ""})
    assert Decision.objects.filter(action="reject").count() == 1
    assert AuditEvent.objects.filter(action="generation.rejected").count() == 1


def test_rejecting_takes_tags_from_the_configured_list(operator, reviewer, workflows, settings):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="unknown reason tag"):
        services.reject(generation, actor=reviewer, tags=["Made up"])
    with pytest.raises(services.DecisionRefused, match="needs a reason"):
        services.reject(generation, actor=reviewer)
    decision = services.reject(
        generation, actor=reviewer, tags=[settings.REJECT_REASON_TAGS[0]], reason="see corner"
    )
    assert decision.tags == [settings.REJECT_REASON_TAGS[0]] and decision.reason == "see corner"


def test_bulk_decisions_are_audited_one_by_one(client, operator, reviewer, workflows):
    generations = [awaiting_generation(operator) for _ in range(3)]
    done = Generation.objects.create(
        brief=generations[0].brief, params=generations[0].params, created_by=operator
    )  # still queued: refused, the others go through
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("review_bulk"),
        {"ids": [g.pk for g in generations] + [done.pk], "action": "approve"},
        follow=True,
    )
    text = response.content.decode()
    assert "3 image(s) approved" in text and f"#{done.pk}" in text
    assert Generation.objects.filter(status="approved").count() == 3
    assert AuditEvent.objects.filter(action="generation.approved").count() == 3


def test_after_a_decision_the_next_awaiting_image_opens(client, operator, reviewer, workflows):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("generation_approve", args=[first.pk]))
    assert response.url == reverse("generation_detail", args=[second.pk])
    response = client.post(reverse("generation_approve", args=[second.pk]))
    assert response.url == reverse("review_queue")


def test_regenerate_with_edited_parameters_is_validated_again(
    client, operator, reviewer, workflows
):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    url = reverse("generation_regenerate_edit", args=[generation.pk])
    page = client.get(url).content.decode()
    assert 'value="64"' in page  # pre-filled with the generation's parameters
    response = client.post(url, {"color": "#00ff00", "width": "5000", "height": "64"})
    assert response.status_code == 200 and "width" in response.context["form"].errors
    response = client.post(url, {"color": "#00ff00", "width": "128", "height": "64"})
    child = Generation.objects.get(parent=generation)
    assert child.params["color"] == 0x00FF00 and child.params["width"] == 128
    # It was the image's decision: the reviewer goes on, here to the (now empty) queue.
    assert response.url == reverse("review_queue")
    generation.refresh_from_db()
    assert generation.status == Generation.Status.REJECTED


def test_compare_shows_two_generations_of_one_brief(client, operator, reviewer, workflows):
    a = awaiting_generation(operator)
    b = services.regenerate(a, actor=reviewer)
    other = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get(reverse("generation_compare", args=[a.pk, b.pk])).status_code == 200
    response = client.get(reverse("generation_compare", args=[a.pk, other.pk]))
    assert response.status_code == 404


def test_the_lineage_shows_each_regeneration_with_its_changes(
    client, operator, reviewer, workflows
):
    root = awaiting_generation(operator, color=0x112233)
    child = services.regenerate(root, actor=reviewer, params={**root.params, "width": 96})
    client.login(username=reviewer.username, password=PASSWORD)
    page = client.get(reverse("generation_detail", args=[child.pk])).content.decode()
    assert "width 64 → 96" in page
    assert f'href="/generations/{root.pk}/"' in page
