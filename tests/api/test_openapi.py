"""The OpenAPI document describes every route of the app, every transaction type and the error shape."""

from __future__ import annotations

import json
import re

from node.api import create_app
from node.openapi import MINIMUM_PAYLOADS, build_document, to_openapi_30
from tests.api.ledger import ApiNode

# The transaction types of the product contract, each with its minimum payload.
SPEC_TX_TYPES = {
    "subject.register", "consent.grant", "consent.revoke", "loan.register", "repayment.record", "repayment.reverse",
    "loan.settle", "loan.write_off", "mandate.grant", "mandate.evaluate", "mandate.end", "case.accept", "case.contact",
    "case.promise", "case.recovery", "case.close", "dispute.open", "dispute.resolve", "complaint.file",
    "complaint.answer", "assessment.record", "member.suspend", "member.reinstate", "governance.propose",
    "governance.vote",
}


def _openapi_path(route_path: str) -> str:
    """Turn an aiohttp route pattern like /v1/state/{key:.+} into the OpenAPI form /v1/state/{key}."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route_path)


async def test_every_route_documented(api_node: ApiNode) -> None:
    async with api_node.session.get(api_node.url("/v1/openapi.json")) as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.")

    app = create_app(api_node.backend)
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        routes.add((route.method.lower(), _openapi_path(path)))
    assert len(routes) >= 19
    for method, path in sorted(routes):
        assert path in document["paths"], path
        assert method in document["paths"][path], (method, path)
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == routes


def test_transaction_types_documented() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    assert SPEC_TX_TYPES <= set(MINIMUM_PAYLOADS)
    type_enum = set(schemas["TxBody"]["properties"]["type"]["enum"])
    assert SPEC_TX_TYPES <= type_enum
    for tx_type in SPEC_TX_TYPES:
        payload = schemas["Payload_" + tx_type.replace(".", "_")]
        assert payload.get("properties"), tx_type
    assert set(schemas["Payload_loan_register"]["required"]) >= {"loan_id", "subject_id", "principal", "currency", "annual_rate_bp", "start_date", "schedule"}


def test_error_shape_and_refs_resolve() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    error = schemas["Error"]["properties"]["error"]
    assert set(error["required"]) == {"code", "message", "details"}
    assert "path_not_found" in error["properties"]["code"]["x-known-codes"]

    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', __import__("json").dumps(document))
    assert references
    missing = sorted(set(references) - set(schemas))
    assert missing == []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method, status)


# Types the contracts add beyond the product contract's minimum list.
CONTRACT_TX_TYPES = (
    "subject.erase", "loan.charge", "loan.restructure", "notice.record", "statement.add", "report.query",
    "data.access", "review.request", "case.advance",
)


def test_contract_types_documented_from_models() -> None:
    from node.contracts.executor import ROUTES

    schemas = build_document()["components"]["schemas"]
    type_enum = set(schemas["TxBody"]["properties"]["type"]["enum"])
    for tx_type in CONTRACT_TX_TYPES:
        assert tx_type in type_enum, tx_type
        model = ROUTES[tx_type].model
        payload = schemas["Payload_" + tx_type.replace(".", "_")]
        assert set(payload["properties"]) == set(model.model_fields), tx_type
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert set(payload.get("required", [])) == required, tx_type
        assert payload["additionalProperties"] is False, tx_type


def test_contract_payload_details() -> None:
    schemas = build_document()["components"]["schemas"]
    erase = schemas["Payload_subject_erase"]["properties"]
    assert erase["mode"]["enum"] == ["erase", "freeze"]
    assert erase["retain_until"]["nullable"] is True
    assert erase["retain_until"]["type"] == "string"
    charge = schemas["Payload_loan_charge"]["properties"]
    assert charge["kind"]["enum"] == ["penalty", "cost"]
    assert charge["amount"]["minimum"] == 1
    advance = schemas["Payload_case_advance"]["properties"]
    assert advance["stage"]["enum"] == ["outsourced", "legal", "written_off"]


def test_schemas_use_openapi_30_dialect() -> None:
    text = json.dumps(build_document())
    assert '"type": "null"' not in text
    assert '"const"' not in text
    assert '"$defs"' not in text


def test_to_openapi_30_rewrites_optional_ref() -> None:
    schema = {"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}], "default": None}
    assert to_openapi_30(schema) == {"default": None, "allOf": [{"$ref": "#/components/schemas/X"}], "nullable": True}
    assert to_openapi_30({"const": "a"}) == {"enum": ["a"]}
    union = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
    assert to_openapi_30(union) == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
