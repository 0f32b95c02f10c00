"""GET /openapi.json: a valid OpenAPI 3.1 document generated from the spec tables, matching what is served."""

from __future__ import annotations

from typing import Any

import jsonschema
from openapi_spec_validator import validate as validate_openapi

from sandbox.config import Settings
from sandbox.spec.dicts import DICTIONARIES
from sandbox.spec.fields import HOP2, Kind
from sandbox.typedefs import SETTINGS
from sandbox.validate import Mode
from tests.province.helpers import message, record, send


async def _document(client: Any) -> dict[str, Any]:
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc: dict[str, Any] = await resp.json()
    return doc


def _validator(doc: dict[str, Any], schema_name: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema validator for one component, resolving $refs inside the document."""
    return jsonschema.Draft202012Validator({**doc, "$ref": f"#/components/schemas/{schema_name}"})


async def test_document_is_valid_openapi_3_1_with_the_roles_paths(client: Any) -> None:
    doc = await _document(client)
    validate_openapi(doc)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {HOP2.path, "/mie/api/mie/index", "/mie/api/mie/index/{hiImgIndx}"}
    assert doc["paths"][HOP2.path]["post"]["operationId"] == "saveExamRpotImgIndx"


async def test_record_schema_is_the_hop_2_table(client: Any) -> None:
    schema = (await _document(client))["components"]["schemas"]["Hop2Record"]
    props = schema["properties"]
    assert list(props) == [f.code for f in HOP2.fields] and len(props) == 73
    assert schema["required"] == list(HOP2.required)
    for spec in HOP2.fields:
        prop = props[spec.code]
        assert prop["title"] == spec.name and prop["description"].startswith(spec.name)
        assert prop.get("maxLength") == (spec.length if spec.kind is not Kind.DECIMAL else None)
        if spec.rule == "dict" and not spec.multi:
            assert spec.dictionary is not None and prop["enum"] == list(DICTIONARIES[spec.dictionary])
    assert props["age"]["type"] == "number" and props["age"]["exclusiveMaximum"] == 1000
    assert props["examDate"]["format"] == "date"
    assert props["imgDldLink"]["format"] == "uri"


async def test_valid_message_and_real_answers_conform_to_the_document(client: Any, settings: Settings) -> None:
    doc = await _document(client)
    msg = message(settings, [record(settings, 1), record(settings, 2, gend="7")])
    assert list(_validator(doc, "Hop2Request").iter_errors(message(settings, [record(settings, 1)]))) == []
    assert list(_validator(doc, "Hop2Request").iter_errors(msg))  # gend 7 is outside the dictionary
    status, answer = await send(client, msg)
    _validator(doc, "BatchAnswer").validate(answer)
    status, refused = await send(client, message(settings, [record(settings, 3)], key="wrong"))
    _validator(doc, "ErrorAnswer").validate(refused)
    page = await (await client.get("/mie/api/mie/index")).json()
    _validator(doc, "IndexPage").validate(page)
    one = await (await client.get("/mie/api/mie/index/" + record(settings, 1)["hiImgIndx"])).json()
    _validator(doc, "IndexAnswer").validate(one)


async def test_strict_mode_document_refuses_unknown_fields_and_example_infno(province: Any) -> None:
    client = await province(mode=Mode.STRICT)
    doc = await _document(client)
    settings = client.server.app[SETTINGS]
    assert doc["components"]["schemas"]["Hop2Record"]["additionalProperties"] is False
    request = _validator(doc, "Hop2Request")
    assert list(request.iter_errors(message(settings, [record(settings, 1, extra="x")])))
    assert list(request.iter_errors(message(settings, [record(settings, 1)], infno="saveExamRpotImgIdx")))
