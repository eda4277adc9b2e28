"""The OpenAPI document describes every route of the app, every transaction type and the error shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

from node import api_messages, i18n
from node.api import create_app
from node.api_reads import REPORT_PURPOSES, REPORT_QUERY_PARAMETERS
from node.daemon import Node
from node.localnet import InitOptions, init_network
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

    report = document["paths"]["/v1/subjects/{subject_id}/report"]["get"]
    query_parameters = {parameter["name"]: parameter for parameter in report["parameters"] if parameter["in"] == "query"}
    assert set(query_parameters) == set(REPORT_QUERY_PARAMETERS)
    assert query_parameters["query_tx"]["required"] is True
    assert query_parameters["query_tx"]["schema"]["pattern"] == "^[0-9a-f]{64}$"
    assert query_parameters["purpose"]["schema"]["enum"] == list(REPORT_PURPOSES)


def test_report_response_and_codes_documented() -> None:
    api_messages.register_all()
    document = build_document()
    schemas = document["components"]["schemas"]
    report = document["paths"]["/v1/subjects/{subject_id}/report"]["get"]

    assert report["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CreditReport"}
    assert "query" in schemas["CreditReport"]["required"]
    assert schemas["CreditReport"]["properties"]["query"]["allOf"] == [{"$ref": "#/components/schemas/ReportQuery"}]
    assert set(schemas["ReportQuery"]["required"]) == {"query_tx", "query_id", "paid", "height", "recorded_at_ms"}
    forbidden = report["responses"]["403"]
    for code in ("query_not_recorded", "query_mismatch", "query_too_old"):
        assert code in forbidden["x-error-codes"], code
        assert code in forbidden["description"], code
        assert i18n.status_for(code) == 403, code


async def test_status_fields_documented(tmp_path: Path) -> None:
    """The Status schema lists exactly the fields a running node returns from /v1/status."""
    settings = {"tick_ms": 10, "block_interval_ms": 10, "view_timeout_ticks": 50}
    configs = init_network(tmp_path / "net", InitOptions(nodes=2, roles=("bank", "regulator"), node_settings=settings, validator_count=1))
    node = Node(configs[0])
    await node.start()
    try:
        status = node.status()
    finally:
        await node.stop()

    schema = build_document()["components"]["schemas"]["Status"]
    assert set(schema["required"]) == set(status)
    assert set(schema["properties"]) == set(status)
    for field in ("tx_expiry_window_ms", "syncing", "in_view_change", "state_root"):
        assert field in schema["required"], field
        assert schema["properties"][field].get("description"), field
    assert schema["properties"]["syncing"]["type"] == "boolean"
    assert schema["properties"]["in_view_change"]["type"] == "boolean"
    assert schema["properties"]["tx_expiry_window_ms"]["type"] == "integer"
    assert set(schema["properties"]["peers"]["items"]["properties"]) == set(status["peers"][0])


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
