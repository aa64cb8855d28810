"""Every URL pattern x every role, against one table of what each role may open.

A new URL without an entry in RULES fails `test_every_url_has_a_rule`.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from reviewapp.briefs.models import Generation
from reviewapp.review import services
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "operator", "reviewer", "workflow_admin", "auditor", "superuser")

# For each URL name: the roles allowed to GET it (others get a login redirect when
# anonymous, 403 or 404 otherwise; 405 for POST-only URLs counts as "reachable").
# "owner" means the operator who submitted the brief the URL is about.
RULES = {
    "home": {"operator", "reviewer", "workflow_admin", "auditor", "superuser"},
    "login": set(ROLES),
    "logout": set(),  # POST only
    "workflow_list": {"operator", "reviewer", "workflow_admin", "auditor", "superuser"},
    "brief_new": {"operator", "superuser"},
    "campaign_new": {"operator", "superuser"},
    "campaign_list": {"operator", "reviewer", "auditor", "superuser"},
    "campaign_detail": {"owner", "reviewer", "auditor", "superuser"},
    "campaign_status": {"owner", "reviewer", "auditor", "superuser"},
    "campaign_submit": set(),  # POST only
    "campaign_export": {"owner", "reviewer", "auditor", "superuser"},
    "campaign_matrix": {"owner", "reviewer", "auditor", "superuser"},
    "campaign_matrix_cells": {"owner", "reviewer", "auditor", "superuser"},
    "campaign_matrix_decide": set(),  # POST only
    "campaign_pause": set(),  # POST only
    "campaign_resume": set(),  # POST only
    "campaign_cancel": set(),  # POST only
    "campaign_limits": set(),  # POST only
    "brief_list": {"operator", "reviewer", "workflow_admin", "auditor", "superuser"},
    "brief_detail": {"owner", "reviewer", "auditor", "superuser"},
    "brief_status": {"owner", "reviewer", "auditor", "superuser"},
    "asset_file": {"owner", "reviewer", "auditor", "superuser"},
    "asset_thumbnail": {"owner", "reviewer", "auditor", "superuser"},
    "review_queue": {"reviewer", "auditor", "superuser"},
    "review_next": {"reviewer", "auditor", "superuser"},
    "review_bulk": set(),  # POST only
    "generation_detail": {"owner", "reviewer", "auditor", "superuser"},
    "generation_approve": set(),  # POST only
    "generation_cancel": set(),  # POST only
    "generation_reject": set(),  # POST only
    "generation_regenerate": set(),  # POST only
    "generation_regenerate_edit": {"owner", "reviewer", "superuser"},
    "generation_claim": set(),  # POST only
    "generation_release": set(),  # POST only
    "decision_undo": set(),  # POST only
    "generation_compare": {"owner", "reviewer", "auditor", "superuser"},
    "manage_list": {"workflow_admin", "superuser"},
    "manage_import": {"workflow_admin", "superuser"},
    "manage_workflow": {"workflow_admin", "superuser"},
    "version_publish": set(),  # POST only
    "version_retire": set(),  # POST only
    "audit_list": {"auditor", "superuser"},
    "audit_export": {"auditor", "superuser"},
}

# POST-only URLs: who may POST (a refusal is 403/404; anonymous is sent to log in).
POST_RULES = {
    "generation_cancel": {"owner", "reviewer", "superuser"},
    "review_bulk": {"reviewer", "superuser"},
    "generation_approve": {"reviewer", "superuser"},
    "generation_reject": {"reviewer", "superuser"},
    "generation_regenerate": {"owner", "reviewer", "superuser"},
    "generation_claim": {"reviewer", "superuser"},
    "generation_release": {"reviewer", "superuser"},
    # Only the one who made the decision (here the reviewer) may undo it.
    "decision_undo": {"reviewer"},
    "version_publish": {"workflow_admin", "superuser"},
    "version_retire": {"workflow_admin", "superuser"},
    # Only the operator who drafted it submits a campaign; its operator or a reviewer
    # steers it.
    "campaign_submit": {"owner"},
    "campaign_matrix_decide": {"owner", "reviewer", "superuser"},
    "campaign_pause": {"owner", "reviewer", "superuser"},
    "campaign_resume": {"owner", "reviewer", "superuser"},
    "campaign_limits": {"owner", "reviewer", "superuser"},
    "campaign_cancel": {"owner", "reviewer", "superuser"},
}


def named_patterns(patterns=None, prefix=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # Django's admin has its own staff checks
            yield from named_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry.name


def test_every_url_has_a_rule():
    names = set(named_patterns())
    assert names - set(RULES) == set(), "add the new URL to RULES"
    assert set(RULES) - names == set(), "RULES names a URL that no longer exists"


def test_every_view_declares_its_rule():
    undeclared = [
        entry.name
        for entry in get_resolver().url_patterns
        if isinstance(entry, URLPattern)
        and entry.name not in {"login", "logout"}
        and not hasattr(entry.callback, "permission_rule")
    ]
    assert undeclared == []


@pytest.fixture
def world(workflows):
    users = {
        "operator": make_user("op", "operator"),
        "owner": None,
        "reviewer": make_user("rev", "reviewer"),
        "workflow_admin": make_user("wfa", "workflow_admin"),
        "auditor": make_user("aud", "auditor"),
    }
    superuser = make_user("root")
    superuser.is_superuser = True
    superuser.save()
    users["superuser"] = superuser
    owner = make_user("own", "operator")
    users["owner"] = owner
    generation = awaiting_generation(owner)
    from reviewapp.briefs.models import Asset

    asset = Asset.objects.create(
        generation=generation, node_id="3", index=0, file="assets/x.png",
        thumbnail="thumbs/x.webp", sha256="0" * 64, width=1, height=1, size=1,
    )  # fmt: skip
    sibling = Generation.objects.create(
        brief=generation.brief, parent=generation, params=generation.params, created_by=owner
    )
    decision = services.reject(
        awaiting_generation(owner), actor=users["reviewer"], reason="too dark"
    )
    from tests.reviewapp.campaigns.helpers import swatch_campaign

    campaign = swatch_campaign(owner, 2)
    args = {
        "campaign_new": ["color_swatch"],
        "campaign_detail": [campaign.pk],
        "campaign_status": [campaign.pk],
        "campaign_export": [campaign.pk],
        "campaign_matrix": [campaign.pk],
        "campaign_matrix_cells": [campaign.pk],
        "campaign_matrix_decide": [campaign.pk],
        "campaign_submit": [campaign.pk],
        "campaign_pause": [campaign.pk],
        "campaign_resume": [campaign.pk],
        "campaign_cancel": [campaign.pk],
        "campaign_limits": [campaign.pk],
        "brief_new": ["color_swatch"],
        "brief_detail": [generation.brief_id],
        "brief_status": [generation.brief_id],
        "asset_file": [asset.pk],
        "asset_thumbnail": [asset.pk],
        "generation_detail": [generation.pk],
        "generation_approve": [generation.pk],
        "generation_cancel": [generation.pk],
        "generation_reject": [generation.pk],
        "generation_regenerate": [generation.pk],
        "generation_regenerate_edit": [generation.pk],
        "generation_compare": [generation.pk, sibling.pk],
        "generation_claim": [generation.pk],
        "generation_release": [generation.pk],
        "decision_undo": [decision.pk],
        "manage_workflow": ["color_swatch"],
        "version_publish": ["color_swatch", 1],
        "version_retire": ["color_swatch", 1],
    }
    return users, args


def _login(client, users, role):
    client.logout()
    if role != "anonymous":
        client.login(username=users[role].username, password=PASSWORD)


def _allowed(rule: set, role: str) -> bool:
    # The owner is an operator; "operator" in a rule means any operator.
    return role in rule or (role == "owner" and "operator" in rule)


@pytest.mark.parametrize("role", [*ROLES, "owner"])
def test_get_matrix(client, world, role, settings, tmp_path):
    users, args = world
    media = settings.MEDIA_ROOT
    (media / "assets").mkdir(parents=True)
    (media / "thumbs").mkdir(parents=True)
    (media / "assets" / "x.png").write_bytes(b"x")
    (media / "thumbs" / "x.webp").write_bytes(b"x")
    _login(client, users, role)
    wrong = []
    for name, rule in RULES.items():
        response = client.get(reverse(name, args=args.get(name, [])))
        status = response.status_code
        if name in POST_RULES or name == "logout":
            ok = status == 405 or (role == "anonymous" and status == 302)
        elif _allowed(rule, role):
            redirects = name in ("home", "login", "review_next")  # next: to an image
            ok = status == 200 or (redirects and status == 302)
        elif role == "anonymous":
            ok = status == 302 and "/login/" in response.url
        else:
            ok = status in (403, 404)
        if not ok:
            wrong.append(f"GET {name} as {role}: {status}")
    assert wrong == []


@pytest.mark.parametrize("role", [*ROLES, "owner"])
def test_post_matrix(client, world, role):
    users, args = world
    wrong = []
    for name, rule in POST_RULES.items():
        _login(client, users, role)
        data = {"reason": "x", "token": "0b0e6b8e-7d52-4c4e-9d8e-4c3b2a1f0e9d"}
        url = reverse(name, args=args.get(name, []))
        if name == "campaign_matrix_decide":  # a JSON endpoint
            body = '{"action": "regenerate", "cells": []}'
            response = client.post(url, body, content_type="application/json")
        else:
            response = client.post(url, data)
        status = response.status_code
        if role == "anonymous":
            ok = status == 302 and "/login/" in response.url
        elif _allowed(rule, role):
            ok = status in (200, 204, 302)
        else:
            ok = status in (403, 404)
        if not ok:
            wrong.append(f"POST {name} as {role}: {status}")
    assert wrong == []
