"""Seeded fuzzing of every GET filter, every POST form and the workflow import, as every
role: whatever is sent, the answer is never a server error.

`FUZZ_CASES` sets the number of cases per test (a few thousand in all by default);
`make fuzz` runs the long version (ten times as many). `FUZZ_SEED` replays a run.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import zlib

import pytest
from django import forms
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from reviewapp.briefs.forms import form_class_for
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("FUZZ_CASES", "500"))

NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "2",
    "48",
    "2024-02-30",
    "2024-13-01",
    "0000-00-00",
    "9999-12-31",
    "2024-02-29T25:61",
    "²",
    "١٢",
    "१०",
    "10**20",
    "100000000000000000000",
    "1e309",
    "nan",
    "inf",
    "-0",
    "0x10",
    "+5",
    "1_0",
    "3.5",
    " 7 ",
    "\x00",
    "a\x00b",
    "\u200b",
    "\u202e",
    "\r\n",
    "\t=1+1",
    '=HYPERLINK("http://x")',
    "@SUM(1)",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%",
    "%00",
    "../../etc/passwd",
    "file:///etc/passwd",
    "http://127.0.0.1:9/",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "A" * 5000,
    "🙂" * 300,
    "[]",
    "{}",
    "null",
    "true",
    "approve",
    "reject",
    "oldest",
    "newest",
    "awaiting_review",
    "color_swatch",
    "olivia",
    "system",
    "slider",
    "#ffffff",
    "#12345",
    "ffffff",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
]
FILTER_KEYS = [
    "actor",
    "action",
    "workflow",
    "since",
    "until",
    "status",
    "submitter",
    "sort",
    "page",
    "mode",
    "return_to",
    "ids",
    "q",
    "then",
    "key",
]


def png(width: int, height: int, text: bytes = b"") -> bytes:
    """A PNG header claiming any size, with a tiny (invalid or valid) body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00\x00\x00" * min(width, 4))
    extra = chunk(b"tEXt", text) if text else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + extra
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def real_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (10, 20, 30, 128)).save(out, "PNG")
    return out.getvalue()


FILES = [
    b"",
    b"not an image",
    b"\x89PNG\r\n\x1a\n",
    b"%!PS-Adobe-3.0 EPSF-3.0\n",
    b"GIF89a\x01\x00",
    b"II*\x00\x08\x00\x00\x00",
    b"BM\x00\x00",
    b"\x00\x00\x01\x00",
    b"\xff\xd8\xff\xe0",
]


def a_file(rng: random.Random, name: str = "upload.png") -> SimpleUploadedFile:
    choice = rng.random()
    if choice < 0.3:
        data = real_png()
    elif choice < 0.45:
        data = png(30000, 30000)
    elif choice < 0.55:
        data = png(8, 8, b"prompt\x00{}")
    else:
        data = rng.choice(FILES) + rng.randbytes(rng.randint(0, 64))
    return SimpleUploadedFile(rng.choice([name, "x.eps", "x.tif", "noext", "../x.png"]), data)


def value(rng: random.Random):
    if rng.random() < 0.1:
        return [rng.choice(NASTY) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.1:
        return str(rng.randint(-(10**25), 10**25))
    return rng.choice(NASTY)


@pytest.fixture
def world(operator, reviewer, workflows):
    """Rows to point URLs at, and a logged-in client per role."""
    generation = awaiting_generation(operator)
    other = awaiting_generation(operator, color=0x00FF00)
    clients = {"anonymous": Client()}
    users = {
        "operator": operator,
        "reviewer": reviewer,
        "workflow_admin": make_user("wanda", "workflow_admin"),
        "auditor": make_user("aldo", "auditor"),
        "superuser": make_user("root"),
    }
    users["superuser"].is_superuser = users["superuser"].is_staff = True
    users["superuser"].save()
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    pks = [generation.pk, other.pk, 10**9]
    return {"clients": clients, "users": users, "generation": generation, "pks": pks}


# Each page's query parameters, swept one at a time through every nasty value.
GET_PARAMS = {
    "review_queue": ["workflow", "status", "submitter", "since", "until", "sort", "page"],
    "review_next": ["workflow", "status", "submitter", "since", "until", "sort", "after"],
    "audit_list": ["actor", "action", "workflow", "since", "until", "page"],
    "audit_export": ["actor", "action", "workflow", "since", "until"],
    "brief_list": ["page", "status", "workflow"],
    "manage_workflow": ["a", "b"],
    "generation_compare": ["mode"],
    "generation_detail": ["then", "status", "sort", "since", "after", "submitter"],
    "login": ["next"],
}


def get_url(world, name: str, rng: random.Random) -> str:
    g, pk = world["generation"], rng.choice(world["pks"])
    args = {
        "manage_workflow": ["color_swatch"],
        "generation_compare": [g.pk, pk],
        "generation_detail": [pk],
    }.get(name, [])
    return reverse(name, args=args)


def expect_no_server_error(client: Client, method: str, url: str, data, case: str):
    try:
        response = getattr(client, method)(url, data)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    except Exception as exc:  # the test client re-raises what the view raised
        raise AssertionError(
            f"{case}: {method.upper()} {url} {data!r:.300} raised {exc!r}"
        ) from exc
    assert response.status_code < 500, f"{case}: {method.upper()} {url} -> {response.status_code}"


def _long() -> int:
    return 10 if os.environ.get("FUZZ_LONG") else 1


def test_every_get_filter_takes_every_nasty_value(world):
    """One parameter at a time, every value, as the superuser (who sees every page)."""
    rng = random.Random(SEED)
    client = world["clients"]["superuser"]
    for name, keys in GET_PARAMS.items():
        for key in keys:
            for v in NASTY:
                url = get_url(world, name, rng)
                expect_no_server_error(client, "get", url, {key: v}, f"sweep {name}.{key}")


def test_get_filters_in_random_combinations_never_fail(world):
    rng = random.Random(SEED + 1)
    for case in range(CASES * _long()):
        role = rng.choice(list(world["clients"]))
        name = rng.choice(list(GET_PARAMS))
        keys = GET_PARAMS[name] + FILTER_KEYS
        params = {rng.choice(keys): value(rng) for _ in range(rng.randint(1, 6))}
        url = get_url(world, name, rng)
        expect_no_server_error(world["clients"][role], "get", url, params, f"case {case} {role}")


def _brief_form(slug: str):
    version = WorkflowVersion.objects.get(workflow__slug=slug, status="published")
    return form_class_for(version)


def _valid_brief(slug: str) -> dict:
    form = _brief_form(slug)()
    return {name: form[name].value() for name in form.fields if form[name].value() is not None}


DECISIONS = {
    "generation_approve": ["key", "then"],
    "generation_reject": ["reason", "tags", "key", "then"],
    "generation_regenerate": ["key"],
    "generation_claim": ["token"],
    "generation_release": ["token"],
    "generation_cancel": ["return_to"],
    "review_bulk": ["ids", "action", "reason", "tags", "return_to"],
    "login": ["username", "password", "next"],
}
SLUGS = ("color_swatch", "sdxl_base_refiner", "sdxl_inpaint_masked")


def _post_url(world, name: str, rng: random.Random) -> str:
    needs_pk = name.startswith("generation_")
    return reverse(name, args=[rng.choice(world["pks"])] if needs_pk else [])


def test_every_post_field_takes_every_nasty_value(world):
    """Each form field in turn, the others valid, through every value: the brief forms of
    every workflow, regenerate with edits, and the decisions."""
    rng = random.Random(SEED + 2)
    reviewer, operator = world["clients"]["reviewer"], world["clients"]["operator"]
    g = world["generation"]
    for slug in SLUGS:
        base, url = _valid_brief(slug), reverse("brief_new", args=[slug])
        form = _brief_form(slug)
        for field in form.base_fields:
            is_file = isinstance(form.base_fields[field], forms.FileField)
            for v in NASTY[:: 3 if is_file else 1]:
                data = {**base, field: a_file(rng) if is_file else v}
                expect_no_server_error(operator, "post", url, data, f"sweep {slug}.{field}")
    edit = reverse("generation_regenerate_edit", args=[g.pk])
    for field in _valid_brief("color_swatch"):
        for v in NASTY:
            data = {**_valid_brief("color_swatch"), field: v}
            expect_no_server_error(reviewer, "post", edit, data, f"sweep regenerate.{field}")
    for name, fields in DECISIONS.items():
        for field in fields:
            for v in NASTY:
                url = _post_url(world, name, rng)
                expect_no_server_error(reviewer, "post", url, {field: v}, f"sweep {name}.{field}")


def test_post_forms_in_random_combinations_never_fail(world):
    rng = random.Random(SEED + 3)
    names = [
        *DECISIONS,
        "generation_regenerate_edit",
        "version_publish",
        "version_retire",
        "logout",
    ]
    fields = sorted(
        {f for fs in DECISIONS.values() for f in fs} | set(_valid_brief("color_swatch"))
    )
    # Read up front: the cases may retire the published versions on the way.
    briefs = {slug: (_brief_form(slug), _valid_brief(slug)) for slug in SLUGS}
    for case in range(CASES * _long()):
        role = rng.choice(list(world["clients"]))
        if rng.random() < 0.4:
            slug = rng.choice(SLUGS)
            url, (form, valid) = reverse("brief_new", args=[slug]), briefs[slug]
            data = {n: value(rng) for n in rng.sample(list(form.base_fields), rng.randint(0, 4))}
            data = {**valid, **data}
            for n, f in form.base_fields.items():
                if isinstance(f, forms.FileField) and rng.random() < 0.7:
                    data[n] = a_file(rng)
        else:
            name = rng.choice(names)
            if name.startswith("version_"):
                url = reverse(name, args=["color_swatch", rng.choice([1, 2, 99])])
            else:
                url = _post_url(world, name, rng)
            data = {n: value(rng) for n in rng.sample(fields, rng.randint(0, 6))}
        if "tags" in data and rng.random() < 0.5:
            data["tags"] = [*rng.sample(settings.REJECT_REASON_TAGS, 2), rng.choice(NASTY)]
        expect_no_server_error(world["clients"][role], "post", url, data, f"case {case} {role}")
        if role != "anonymous" and url in (reverse("logout"), reverse("login")):
            world["clients"][role].force_login(world["users"][role])  # back as the role


def _mutate(rng: random.Random, doc, depth: int = 0):
    """A random edit somewhere in a JSON document: a value replaced, removed, retyped,
    nested deep, a `$ref` added."""
    if isinstance(doc, dict) and doc and rng.random() < 0.7:
        key = rng.choice(list(doc))
        roll = rng.random()
        if roll < 0.15:
            del doc[key]
        elif roll < 0.5 and depth < 6:
            doc[key] = _mutate(rng, doc[key], depth + 1)
        else:
            doc[key] = rng.choice(
                [
                    value(rng),
                    rng.randint(-(10**6), 10**6),
                    None,
                    [],
                    {},
                    [1, "x"],
                    {"$ref": rng.choice(["file:///etc/passwd", "http://127.0.0.1:9/x", "#/nope"])},
                    rng.random() * 1e6,
                    True,
                    "x-image",
                    {"type": "integer", "minimum": 5, "maximum": 1},
                ]
            )
        return doc
    if isinstance(doc, list) and doc and rng.random() < 0.7:
        i = rng.randrange(len(doc))
        doc[i] = _mutate(rng, doc[i], depth + 1)
        return doc
    return rng.choice([doc, value(rng), [doc], {"x": doc}, 10**30, -1.5])


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def test_workflow_import_never_fails(world):
    rng = random.Random(SEED + 2)
    client = world["clients"]["workflow_admin"]
    graph_text = (settings.WORKFLOWS_DIR / "color_swatch.api.json").read_text()
    schema_text = (settings.PARAMS_DIR / "color_swatch.schema.json").read_text()
    url = reverse("manage_import")
    for case in range(CASES * _long()):
        graph, schema = json.loads(graph_text), json.loads(schema_text)
        roll = rng.random()
        if roll < 0.45:
            schema = _mutate(rng, schema)
        elif roll < 0.9:
            graph = _mutate(rng, graph)
        files = {}
        for name, doc in (("graph", graph), ("schema", schema)):
            text = json.dumps(doc)
            if rng.random() < 0.05:
                text = _deep(rng.choice([100, 5000, 100000]))
            elif rng.random() < 0.05:
                text = text[: rng.randrange(len(text) + 1)]
            elif rng.random() < 0.03:
                text = "\ufeff" + text
            files[name] = SimpleUploadedFile(f"{name}.json", text.encode())
        slug = rng.choice(["color-swatch-fuzz", "color_swatch", "x" * 200, "", "Ünï", "a b"])
        data = {"slug": slug, "publish": rng.choice(["on", ""]), **files}
        expect_no_server_error(client, "post", url, data, f"case {case}")
        # What was accepted must render: its brief form, a brief POST and its diff page.
        if slug == "color-swatch-fuzz" and rng.random() < 0.5:
            for page in (
                reverse("brief_new", args=[slug]),
                reverse("manage_workflow", args=[slug]),
            ):
                expect_no_server_error(
                    world["clients"]["superuser"], "get", page, {}, f"case {case}"
                )
            expect_no_server_error(
                world["clients"]["superuser"],
                "post",
                reverse("brief_new", args=[slug]),
                {"color": "#336699", "width": "64", "height": "64"},
                f"case {case}",
            )


EXAMPLES = settings.BASE_DIR / "examples" / "campaigns"
BUILDER = ["values-color", "values-width", "values-height", "values-blur_radius",
           "random-color", "plan_kind", "title", "canary_size", "breaker_min_decided",
           "breaker_max_reject_pct", "gpu_budget_s"]  # fmt: skip


def _plan_file(rng: random.Random) -> SimpleUploadedFile:
    """A matrix file mutated, a row file with nasty fields, or bytes."""
    choice = rng.random()
    if choice < 0.4:
        doc = json.loads((EXAMPLES / "mockups.json").read_text())
        for _ in range(rng.randint(1, 4)):
            doc = _mutate(rng, doc)
        return SimpleUploadedFile("m.json", json.dumps(doc).encode())
    if choice < 0.8:
        header = rng.sample(["sku", "color", "width", "height", "blur_radius", "seed"], 3)
        rows = [",".join(str(rng.choice(NASTY))[:50].replace("\n", " ") for _ in header)
                for _ in range(rng.randint(0, 5))]  # fmt: skip
        text = "\n".join([",".join(header), *rows])
        return SimpleUploadedFile(rng.choice(["r.csv", "r.jsonl"]), text.encode())
    return SimpleUploadedFile("x.json", rng.randbytes(rng.randint(0, 200)))


def test_campaign_pages_never_fail(world):
    """The new-campaign form (builder, matrix and row files, images and ZIPs), the
    matrix's windows and decisions, and the steering forms, with nasty values."""
    from tests.reviewapp.campaigns.helpers import swatch_campaign

    rng = random.Random(SEED + 5)
    campaign = swatch_campaign(world["users"]["operator"], 4, sizes=(64, 128))
    pk = campaign.pk
    for case in range(CASES // 2 * _long()):
        role = rng.choice(list(world["clients"]))
        client = world["clients"][role]
        kind = rng.random()
        if kind < 0.35:
            url = reverse("campaign_new", args=[rng.choice(["color_swatch", "product_mockup"])])
            data = {n: value(rng) for n in rng.sample(BUILDER, rng.randint(1, 6))}
            data.setdefault("plan_kind", rng.choice(["builder", "matrix_file", "rows"]))
            if rng.random() < 0.5:
                data["plan_file"] = _plan_file(rng)
            if rng.random() < 0.3:
                data[rng.choice(["images", "files-product"])] = a_file(rng, "mug.png")
            expect_no_server_error(client, "post", url, data, f"case {case} {role} new")
        elif kind < 0.6:
            url = reverse("campaign_matrix_cells", args=[pk])
            keys = ["r0", "r1", "rows", "cols", "at-colour", "at-size"]
            params = {k: value(rng) for k in rng.sample(keys, rng.randint(1, 4))}
            expect_no_server_error(client, "get", url, params, f"case {case} {role} cells")
        elif kind < 0.85:
            action = rng.choice(["approve", "reject", "regenerate", value(rng)])
            body = {"action": action, "cells": [0, 1], "row": 0,
                    "layout": {"rows": "colour"}, "tags": []}  # fmt: skip
            for _ in range(rng.randint(1, 3)):
                body = _mutate(rng, body)
            url = reverse("campaign_matrix_decide", args=[pk])
            try:
                response = client.post(url, json.dumps(body), content_type="application/json")
            except Exception as exc:
                raise AssertionError(f"case {case} {role} decide {body!r:.300}: {exc!r}") from exc
            assert response.status_code < 500, f"case {case} decide {body!r:.300}"
        else:
            name = rng.choice(["campaign_limits", "campaign_pause", "campaign_resume"])
            keys = ["breaker_min_decided", "breaker_max_reject_pct", "gpu_budget_s", "reason"]
            data = {k: value(rng) for k in rng.sample(keys, rng.randint(1, 4))}
            url = reverse(name, args=[pk])
            expect_no_server_error(client, "post", url, data, f"case {case} {role} {name}")


@pytest.mark.fuzz
@pytest.mark.skipif(not os.environ.get("FUZZ_LONG"), reason="the long run: make fuzz")
def test_the_long_fuzz_run(world):
    """Ten times the cases of the four tests above (`make fuzz`)."""
    test_get_filters_in_random_combinations_never_fail(world)
    test_post_forms_in_random_combinations_never_fail(world)
    test_workflow_import_never_fails(world)
    test_campaign_pages_never_fail(world)
