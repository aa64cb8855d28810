"""The rules a workflow's files must meet before they are accepted (comfybridge.checks)."""

import copy
import json
import urllib.request

import pytest

from comfybridge.checks import MAX_DEPTH, parse_document
from comfybridge.contract import Binding, Contract
from comfybridge.errors import ContractError, ParamsInvalid
from tests.comfybridge.test_contract import SCHEMA


def with_width(**keywords):
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["size"].update(keywords)
    return schema


def problems_of(schema) -> str:
    with pytest.raises(ContractError) as caught:
        Contract.from_schema(schema)
    return " ".join(caught.value.problems)


def stored_contract(schema) -> Contract:
    """A contract as an old row would give it: built without the import checks."""
    return Contract(schema, {"size": (Binding("1", "width"),)})


# -- references ----------------------------------------------------------------------------


def test_the_trap_answers_when_asked(http_trap):
    # The trap works: a request that did reach it would be seen.
    urllib.request.urlopen(f"{http_trap.url}/probe").read()
    assert http_trap.requests == ["/probe"]


def test_it_refuses_a_ref_to_a_local_file_naming_the_property():
    errors = problems_of(with_width(**{"$ref": "file:///etc/passwd"}))
    assert "/properties/size" in errors and "file:///etc/passwd" in errors
    assert "root:" not in errors


def test_it_refuses_a_ref_to_a_url_and_fetches_nothing(http_trap):
    schema = with_width(**{"$ref": f"{http_trap.url}/x"})
    errors = problems_of(schema)
    assert "'$ref' at /properties/size points outside the schema" in errors
    schema["$defs"] = {"d": {"$dynamicRef": f"{http_trap.url}/y"}}
    assert "'$dynamicRef' at /$defs/d" in problems_of(schema)
    assert http_trap.requests == []


def test_it_refuses_a_ref_hidden_below_the_properties(http_trap):
    schema = with_width(allOf=[{"not": {"$ref": f"{http_trap.url}/deep"}}])
    assert "/properties/size/allOf/0/not" in problems_of(schema)
    assert http_trap.requests == []


def test_a_stored_schema_with_a_url_ref_never_fetches(http_trap):
    contract = stored_contract(with_width(**{"$ref": f"{http_trap.url}/x"}))
    with pytest.raises(ParamsInvalid) as caught:
        contract.validate({"color": 1, "size": 100})
    assert http_trap.requests == []
    assert "fetched-from-trap" not in str(caught.value.errors)
    assert "reference that cannot be followed" in str(caught.value.errors)


def test_a_stored_schema_with_a_file_ref_never_reads_the_file(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"const": "the-secret-value"}))
    contract = stored_contract(with_width(**{"$ref": secret.as_uri()}))
    with pytest.raises(ParamsInvalid) as caught:
        contract.validate({"color": 1, "size": 100})
    assert "the-secret-value" not in str(caught.value.errors)


def test_internal_refs_keep_working():
    schema = with_width(**{"$ref": "#/$defs/small"})
    schema["$defs"] = {"small": {"maximum": 200}}
    contract = Contract.from_schema(schema)
    assert contract.validate({"color": 1, "size": 200})["size"] == 200
    with pytest.raises(ParamsInvalid) as caught:
        contract.validate({"color": 1, "size": 300})
    assert "size" in caught.value.errors


def test_it_refuses_internal_refs_that_point_nowhere_or_go_round():
    assert "'#/$defs/nope', which is not in the schema" in problems_of(
        with_width(**{"$ref": "#/$defs/nope"})
    )
    circular = with_width(**{"$ref": "#/$defs/a"})
    circular["$defs"] = {"a": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/a"}]}}
    assert "go round in a circle" in problems_of(circular)
    assert "go round in a circle" in problems_of(with_width(**{"$ref": "#"}))


def test_it_refuses_another_dialect_and_a_nested_id():
    schema = copy.deepcopy(SCHEMA)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    assert "'$schema' must be" in problems_of(schema)
    assert "'$id' at /properties/size" in problems_of(with_width(**{"$id": "http://x/"}))


# -- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested far too deeply"),
        (b'{"a":' * (MAX_DEPTH + 5) + b"1" + b"}" * (MAX_DEPTH + 5), "levels deep"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1e999}', "too large a number"),
        (b'{"a": ' + b"9" * 5000 + b"}", "more than 40 digits"),
        (b'{"a": "\\u0000"}', "NUL character (at /a)"),
        (b'{"a": {"\\ud800": 1}}', "not valid Unicode (at /a/"),
        (b" " * (2 * 1024 * 1024 + 1), "larger than 2 MiB"),
    ],
)
def test_a_bad_file_is_refused_by_name(raw, words):
    with pytest.raises(ContractError) as caught:
        parse_document(raw, "the schema (.schema.json)")
    (problem,) = caught.value.problems
    assert problem.startswith("the schema (.schema.json)") and words in problem


def test_a_file_with_a_byte_order_mark_is_read():
    assert parse_document(b'\xef\xbb\xbf{"a": 1.5}', "x.json") == {"a": 1.5}
