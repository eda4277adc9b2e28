"""The OpenAPI 3.0 document of the node's HTTP API, served at GET /v1/openapi.json.

Payload schemas come from the contracts' pydantic models where a contract
routes the type (`node.contracts.executor.ROUTES`). A type without a contract
is described by the minimum payload fields of the product contract.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

from node import i18n
from node.api_reads import REPORT_PURPOSES

logger = logging.getLogger("xinlian.openapi")

API_VERSION = "1"
# Codes of node.report_access for a report read without a matching recorded report.query.
REPORT_QUERY_ERROR_CODES = ("query_not_recorded", "query_mismatch", "query_too_old", "query_already_served")

_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "description": "YYYY-MM-DD in the consortium's UTC offset"}
_FEN = {"type": "integer", "minimum": 0, "description": "amount in fen (1/100 CNY)"}
_UNIX_MS = {"type": "integer", "minimum": 0, "description": "unix time in milliseconds"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {**required, **(optional or {})}
    return {"type": "object", "required": sorted(required), "properties": properties}


_INSTALMENT = _object({"number": {"type": "integer", "minimum": 1}, "due_date": _DATE, "principal": _FEN, "interest": _FEN})
_CONSENT = _object(
    {
        "consent_id": _ID,
        "subject_id": _HEX64,
        "grantee": _ID,
        "purpose": {"type": "string", "enum": ["credit_query", "assessment", "collection", "data_sharing"]},
        "expires_on": _DATE,
    },
    {"evidence": _HEX64},
)
_MANDATE = _object(
    {
        "mandate_id": _ID,
        "agencies": {"type": "array", "items": _ID, "minItems": 1},
        "start_dpd": {"type": "integer", "minimum": 1},
        "valid_from": _DATE,
        "valid_until": _DATE,
    },
    {"commission_bp": {"type": "integer", "minimum": 0}},
)
_CASE = _object({"case_id": _ID})
_LOAN_END = _object({"loan_id": _ID, "amount": _FEN, "reason": _TEXT})
_PROPOSAL = _object({"proposal_id": _ID}, {"action": {"type": "object"}, "approve": {"type": "boolean"}})

# The minimum payload of every transaction type; contracts may accept more fields.
MINIMUM_PAYLOADS: dict[str, dict[str, Any]] = {
    "subject.register": _object({"subject_id": _HEX64, "commitment": _HEX64}, {"subject_key": _HEX64}),
    "consent.grant": _CONSENT,
    "consent.revoke": _CONSENT,
    "loan.register": _object(
        {
            "loan_id": _ID,
            "subject_id": _HEX64,
            "principal": _FEN,
            "currency": {"type": "string", "enum": ["CNY"]},
            "annual_rate_bp": {"type": "integer", "minimum": 0},
            "start_date": _DATE,
            "schedule": {"type": "array", "items": _INSTALMENT, "minItems": 1},
        },
        {"guarantors": {"type": "array", "items": _HEX64}, "terms": {"type": "object"}},
    ),
    "repayment.record": _object({"loan_id": _ID, "payment_id": _ID, "amount": _FEN, "paid_on": _DATE}, {"case_id": _ID}),
    "repayment.reverse": _object({"loan_id": _ID, "payment_id": _ID, "reason": _TEXT}),
    "loan.settle": _LOAN_END,
    "loan.write_off": _LOAN_END,
    "mandate.grant": _MANDATE,
    "mandate.evaluate": _object({"mandate_id": _ID, "agency": _ID, "evaluated_on": _DATE, "rating": {"type": "integer"}}),
    "mandate.end": _object({"mandate_id": _ID}, {"reason": _TEXT}),
    "case.accept": _CASE,
    "case.contact": _object(
        {
            "case_id": _ID,
            "contact_id": _ID,
            "at": _UNIX_MS,
            "channel": {"type": "string", "enum": ["voice", "sms", "visit", "letter", "app"]},
            "target": {"type": "string", "enum": ["debtor", "guarantor", "contact_person"]},
            "number_hash": _HEX64,
            "collectors": {"type": "array", "items": _ID, "minItems": 1},
            "outcome": {"type": "string"},
        }
    ),
    "case.promise": _object({"case_id": _ID, "promise_id": _ID, "amount": _FEN, "due_on": _DATE}),
    "case.recovery": _object({"case_id": _ID, "payment_id": _ID, "amount": _FEN, "paid_on": _DATE}),
    "case.close": _object({"case_id": _ID, "outcome": {"type": "string"}}),
    "dispute.open": _object({"dispute_id": _ID, "loan_id": _ID, "reason": _TEXT}),
    "dispute.resolve": _object(
        {"dispute_id": _ID, "resolution": {"type": "string", "enum": ["corrected", "confirmed", "undetermined"]}}
    ),
    "complaint.file": _object({"complaint_id": _ID, "agency": _ID, "category": {"type": "string"}, "statement_hash": _HEX64}),
    "complaint.answer": _object({"complaint_id": _ID, "statement_hash": _HEX64}),
    "assessment.record": _object(
        {
            "assessment_id": _ID,
            "subject_id": _HEX64,
            "score": {"type": "integer"},
            "grade": {"type": "string"},
            "model_id": _ID,
            "points": {"type": "object", "additionalProperties": {"type": "integer"}},
            "valid_until": _DATE,
        }
    ),
    "member.suspend": _object({"member_id": _ID, "reason": _TEXT}),
    "member.reinstate": _object({"member_id": _ID, "reason": _TEXT}),
    "governance.propose": _PROPOSAL,
    "governance.vote": _object({"proposal_id": _ID, "approve": {"type": "boolean"}}),
}


def _contract_payload_schemas() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Return (payload schema by transaction type, nested model schemas) of the contracts' routes.

    Nested pydantic models are referenced as #/components/schemas/<model name>,
    so their schemas are returned separately to go into the components.
    """
    try:
        from node.contracts.executor import ROUTES
    except ImportError:
        return {}, {}
    schemas: dict[str, dict[str, Any]] = {}
    nested: dict[str, dict[str, Any]] = {}
    for tx_type, entry in sorted(ROUTES.items()):
        schema = entry.model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            nested[name] = to_openapi_30(definition)
        schemas[tx_type] = to_openapi_30(schema)
    return schemas, nested


def to_openapi_30(schema: Any) -> Any:
    """Rewrite a pydantic (JSON Schema 2020-12) schema in the OpenAPI 3.0 dialect.

    OpenAPI 3.0 has no "null" type and no `const`, so an optional field's
    `anyOf: [X, {"type": "null"}]` becomes X with `nullable: true`, and
    `const: v` becomes `enum: [v]`.
    """
    if isinstance(schema, list):
        return [to_openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: to_openapi_30(value) for key, value in schema.items()}
    if "const" in result:
        result["enum"] = [result.pop("const")]
    variants = result.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        others = [variant for variant in variants if variant != {"type": "null"}]
        del result["anyOf"]
        if len(others) == 1 and "$ref" not in others[0]:
            result = {**others[0], **result}
        elif len(others) == 1:
            result["allOf"] = others  # siblings of a $ref are ignored in OpenAPI 3.0
        else:
            result["anyOf"] = others
        result["nullable"] = True
    return result


def payload_schemas() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Return (payload schema of every transaction type, nested model schemas).

    A contract's model replaces the minimum payload of its type.
    """
    schemas = {tx_type: copy.deepcopy(schema) for tx_type, schema in MINIMUM_PAYLOADS.items()}
    contract_schemas, nested = _contract_payload_schemas()
    schemas.update(contract_schemas)
    return dict(sorted(schemas.items())), nested


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error_responses(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "Invalid input: malformed JSON, a bad parameter or an invalid transaction.",
        401: "The signed read request is missing, invalid, stale or replayed.",
        403: "The reader may not read this data.",
        404: "Not found.",
        405: "Method not allowed on this path.",
        409: "Duplicate transaction or nonce.",
        413: "Body or transaction too large.",
        415: "Content-Type is not application/json.",
        422: (
            "The transaction cannot be admitted: unknown sender, a payload the contracts cannot read, or personal"
            " data in the payload. Role and suspension decisions are not made here: such a transaction is committed"
            " with ok: false and the rule's error code."
        ),
        426: "A websocket upgrade is required.",
        429: "The sender has too many pending transactions.",
        503: "The node is overloaded: retry later.",
    }
    return {str(status): {"description": descriptions[status], "content": _json_content(_ref("Error"))} for status in statuses}


def _path_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _get(summary: str, schema: dict[str, Any], parameters: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = (400, 404)) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": _json_content(schema)}, **_error_responses(*errors)},
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


_LANGUAGE_HEADER = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "zh-CN or en selects the language of error messages; the node's configured language otherwise.",
}
_READ_AUTH_HEADERS = [
    {"name": "X-Xinlian-Key", "in": "header", "required": True, "schema": _HEX64, "description": "ed25519 public key of a member client or of the subject"},
    {"name": "X-Xinlian-Timestamp", "in": "header", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{1,16}$"}, "description": "unix milliseconds; must be within 300 s of the node's clock"},
    {
        "name": "X-Xinlian-Node",
        "in": "header",
        "required": False,
        "schema": _ID,
        "description": "member id of the node that serves the request (node_id in GET /v1/status); a node that enforces "
        "the binding rejects a missing header (missing_signature) or another node's id (wrong_node)",
    },
    {
        "name": "X-Xinlian-Signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
        "description": 'ed25519 signature over b"xinlian/read/v2\\x00" + method + "\\n" + path with query + "\\n" + sha256 hex of the body + "\\n" + timestamp + "\\n" + X-Xinlian-Node; '
        'without X-Xinlian-Node, the older form over b"xinlian/read/v1\\x00" and the first four lines',
    },
]


def _object_path(kind: str, summary: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    parameter = _path_parameter("object_id", _ID, f"the {kind} id")
    return _get(summary, schema or {"type": "object"}, [parameter])


# Served instalment of a loan: the registered amounts, charged costs and what payments allocated to each.
_SERVED_INSTALMENT = _object(
    {
        "number": {"type": "integer", "minimum": 1},
        "due_date": _DATE,
        "principal": _FEN,
        "interest": _FEN,
        "costs": _FEN,
        "paid_principal": _FEN,
        "paid_interest": _FEN,
        "paid_costs": _FEN,
    }
)
_DPD = {"type": "integer", "minimum": 0, "description": "days past due on as_of_date"}
_AS_OF_DATE = {**_DATE, "description": "local date of the head block, the date DPD and classification are computed for"}
_LOAN_VIEW = _object(
    {
        "loan_id": _ID,
        "creditor": _ID,
        "status": {"type": "string"},
        "instalments": {"type": "array", "items": _SERVED_INSTALMENT},
        "as_of_date": _AS_OF_DATE,
        "outstanding": _FEN,
        "dpd": _DPD,
        "max_dpd": {"type": "integer", "minimum": 0},
        "classification": {"type": "string"},
        "classification_zh": {"type": "string"},
        "payments": {"type": "array", "items": {"type": "object"}},
        "notices": {"type": "array", "items": {"type": "object"}},
    }
)
_LOAN_SCHEDULE = _object(
    {"loan_id": _ID, "as_of_date": _AS_OF_DATE, "dpd": _DPD, "schedule": {"type": "array", "items": _SERVED_INSTALMENT}}
)
_CASE_VIEW = _object(
    {
        "case_id": _ID,
        "status": {"type": "string"},
        "history": {"type": "array", "items": {"type": "object"}, "description": "the case's recorded actions, oldest first"},
    }
)
_MANDATE_VIEW = _object(
    {
        "mandate_id": _ID,
        "agencies": {"type": "array", "items": _ID},
        "commission": {
            "type": "array",
            "items": {"type": "object"},
            "description": "one record per agency that has recovered money under the mandate: recovered and commission in fen",
        },
    }
)


def _paths() -> dict[str, Any]:
    tx_id = _path_parameter("tx_id", _HEX64, "SHA-256 hex of the canonical envelope")
    height = _path_parameter("height", {"type": "integer", "minimum": 0}, "block height")
    submit = {
        "post": {
            "summary": "Submit one signed transaction envelope, or a batch of up to 1000.",
            "requestBody": {
                "required": True,
                "content": _json_content({"oneOf": [_ref("Envelope"), _ref("Batch")]}),
            },
            "responses": {
                "202": {
                    "description": "One envelope: admitted and pending. A batch: one result per item, in order.",
                    "content": _json_content({"oneOf": [_ref("SubmitAccepted"), _ref("BatchResult")]}),
                },
                **_error_responses(400, 409, 413, 415, 422, 429, 503),
            },
        }
    }
    events = _get(
        "Websocket of committed events. Each text frame is one Event. A subscriber whose queue overflows is closed with code 4008.",
        _ref("Event"),
        [
            {"name": "types", "in": "query", "required": False, "schema": {"type": "string"}, "description": "comma-separated event types, for example tx.committed,case.opened"},
            {"name": "member", "in": "query", "required": False, "schema": _ID, "description": "only events that concern this member or everyone"},
        ],
        errors=(400, 426, 503),
    )
    events["get"]["responses"]["101"] = {"description": "Switching to the websocket protocol."}
    state = _get(
        "Read one state value, with a Merkle proof against the latest state root when proof=1.",
        _ref("StateValue"),
        [
            _path_parameter("key", {"type": "string"}, "state key, for example params"),
            {"name": "proof", "in": "query", "required": False, "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}},
        ],
    )
    report = _get(
        "The subject's cross-institution credit report. Personal data: the request must be signed, and the reader needs consent, "
        "or must be the subject or the regulator. The read must name the reader's committed report.query for the same subject "
        "and purpose in query_tx, so every query is recorded on chain.",
        _ref("CreditReport"),
        [
            _path_parameter("subject_id", _HEX64, "pseudonymous subject id"),
            {
                "name": "purpose",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(REPORT_PURPOSES), "default": "credit_query"},
                "description": "purpose of the read; the consent and the report.query must name the same purpose",
            },
            {
                "name": "query_tx",
                "in": "query",
                "required": True,
                "schema": _HEX64,
                "description": "tx_id of the reader's committed report.query for this subject and purpose, "
                "sent by the reader's key or another client key of the reader's member; "
                "it allows one read on each node for the chain's tx_expiry_window_ms after its block",
            },
            *_READ_AUTH_HEADERS,
        ],
        errors=(400, 401, 403, 404),
    )
    report["get"]["responses"]["403"] = {
        "description": "The reader may not read this report. The access policy raises no_consent and the other personal-data codes. "
        "Without a matching recorded query: query_not_recorded (query_tx missing, malformed, unknown, pending or rejected), "
        "query_mismatch (another type, sender, subject or purpose), query_too_old (older than tx_expiry_window_ms) "
        "or query_already_served (the query already served a report on this node).",
        "content": _json_content(_ref("Error")),
        "x-error-codes": list(REPORT_QUERY_ERROR_CODES),
    }
    metrics = {
        "get": {
            "summary": "Prometheus text-format metrics: height, view, mempool size, admissions, rejections by code, peers, HTTP requests by status.",
            "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }
    }
    return {
        "/v1/transactions": submit,
        "/v1/transactions/{tx_id}": _get("Status of a transaction: pending, committed with its receipt, or rejected.", _ref("TransactionStatus"), [tx_id]),
        "/v1/blocks/latest": _get("The latest committed block.", _ref("Block")),
        "/v1/blocks/{height}": _get("The committed block at a height.", _ref("Block"), [height]),
        "/v1/status": _get("Node and chain status.", _ref("Status"), errors=()),
        "/v1/members": _get("Every consortium member.", {"type": "object", "properties": {"members": {"type": "array", "items": {"type": "object"}}}}, errors=()),
        "/v1/members/{object_id}": _object_path("member", "One member: role, keys and status."),
        "/v1/params": _get("Consortium parameters in force.", {"type": "object", "properties": {"params": {"type": "object"}}}, errors=()),
        "/v1/loans/{object_id}": _object_path("loan", "One loan: terms, instalments, payments, notices, balances, days past due and classification.", _LOAN_VIEW),
        "/v1/loans/{object_id}/schedule": _object_path("loan", "A loan's repayment schedule with the paid amounts of each instalment.", _LOAN_SCHEDULE),
        "/v1/cases/{object_id}": _object_path("case", "One collection case with its action history.", _CASE_VIEW),
        "/v1/mandates/{object_id}": _object_path("mandate", "One collection mandate with the commission recorded per agency.", _MANDATE_VIEW),
        "/v1/disputes/{object_id}": _object_path("dispute", "One dispute."),
        "/v1/complaints/{object_id}": _object_path("complaint", "One complaint."),
        "/v1/state/{key}": state,
        "/v1/subjects/{subject_id}/report": report,
        "/v1/events": events,
        "/v1/openapi.json": _get("This document.", {"type": "object"}, errors=()),
        "/metrics": metrics,
    }


def _components() -> dict[str, Any]:
    payloads, nested = payload_schemas()
    body_variants = []
    schemas: dict[str, Any] = dict(nested)
    for tx_type, schema in payloads.items():
        name = "Payload_" + tx_type.replace(".", "_")
        schemas[name] = schema
        body_variants.append(
            {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": [tx_type]}, "payload": _ref(name)},
            }
        )
    schemas["Error"] = _object(
        {
            "error": _object(
                {
                    "code": {
                        "type": "string",
                        "description": "stable English identifier; x-known-codes lists the codes registered when the node started",
                        "x-known-codes": i18n.known_codes(),
                    },
                    "message": {"type": "string", "description": "localized by Accept-Language"},
                    "details": {"type": "object"},
                }
            )
        }
    )
    schemas["TxBody"] = {
        **_object(
            {
                "chain_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "type": {"type": "string", "enum": sorted(payloads)},
                "sender": _HEX64,
                "nonce": {"type": "string", "minLength": 1, "maxLength": 64},
                "expires_at": _UNIX_MS,
                "payload": {"type": "object"},
            }
        ),
        "additionalProperties": False,
        "description": "Signed part of a transaction. The payload schema depends on type; see allOf.",
        "allOf": [{"oneOf": body_variants}],
    }
    schemas["Envelope"] = {
        **_object({"body": _ref("TxBody"), "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}),
        "additionalProperties": False,
        "description": 'ed25519 signature over b"xinlian/tx/v1\\x00" + canonical JSON of body. Integers only, no floats; at most 64 KiB encoded.',
    }
    schemas["Batch"] = _object({"transactions": {"type": "array", "items": _ref("Envelope"), "minItems": 1, "maxItems": 1000}})
    schemas["SubmitAccepted"] = _object({"tx_id": _HEX64, "status": {"type": "string", "enum": ["pending"]}})
    item = _object(
        {"index": {"type": "integer"}, "tx_id": {"type": "string", "nullable": True}, "status": {"type": "string", "enum": ["pending", "rejected"]}},
        {"error": {"type": "object", "description": "the error object of the Error schema, for a rejected item"}},
    )
    schemas["BatchResult"] = _object({"admitted": {"type": "integer"}, "rejected": {"type": "integer"}, "results": {"type": "array", "items": item}})
    schemas["Receipt"] = _object(
        {"ok": {"type": "boolean"}, "error_code": {"type": "string", "nullable": True}, "events": {"type": "array", "items": {"type": "object"}}},
        {"error_details": {"type": "object"}, "error_message": {"type": "string"}},
    )
    schemas["TransactionStatus"] = _object(
        {"tx_id": _HEX64, "status": {"type": "string", "enum": ["pending", "committed", "rejected"]}},
        {"height": {"type": "integer"}, "index": {"type": "integer"}, "receipt": _ref("Receipt"), "reason": {"type": "string"}},
    )
    schemas["Block"] = _object(
        {
            "header": _object(
                {
                    "height": {"type": "integer"},
                    "previous_hash": {"type": "string"},
                    "timestamp": _UNIX_MS,
                    "proposer": {"type": "string"},
                    "view": {"type": "integer"},
                    "transactions_root": {"type": "string"},
                    "state_root": {"type": "string"},
                }
            ),
            "tx_ids": {"type": "array", "items": _HEX64},
            "certificate": {"type": "object", "nullable": True},
        }
    )
    schemas["Status"] = _object(
        {
            "chain_id": {"type": "string"},
            "node_id": {"type": "string", "description": "member id of this node"},
            "node_key": _HEX64,
            "role": {"type": "string"},
            "height": {"type": "integer", "description": "height of the latest committed block"},
            "block_hash": {"type": "string", "description": "hash of the latest committed block"},
            "state_root": {"type": "string", "description": "state root after the latest committed block"},
            "chain_time_ms": {**_UNIX_MS, "description": "the node's chain clock in unix milliseconds; runs fast on an accelerated network"},
            "view": {"type": "integer"},
            "in_view_change": {"type": "boolean", "description": "true while this node is moving to a new view"},
            "primary": {"type": "string", "description": "member id of the primary for the next block"},
            "validators": {"type": "array", "items": {"type": "string"}, "description": "member ids of the validators in force"},
            "peers": {
                "type": "array",
                "items": _object(
                    {"member_id": {"type": "string"}, "node_key": _HEX64, "connected": {"type": "boolean"}},
                    {"height": {"type": "integer", "nullable": True, "description": "the peer's last probed height"}},
                ),
            },
            "mempool_size": {"type": "integer"},
            "tx_expiry_window_ms": {
                "type": "integer",
                "minimum": 1,
                "description": "genesis limit: expires_at must be at most this far after the chain time; an accelerated network widens it",
            },
            "syncing": {"type": "boolean", "description": "true while the node catches up from peers and pauses consensus"},
            "version": {"type": "string"},
        }
    )
    schemas["ReportQuery"] = _object(
        {
            "query_tx": _HEX64,
            "query_id": _ID,
            "paid": {"type": "boolean", "description": "a subject's own report beyond the free ones"},
            "height": {"type": "integer", "description": "height of the block that recorded the query"},
            "recorded_at_ms": _UNIX_MS,
        }
    )
    schemas["CreditReport"] = _object(
        {
            "subject_id": _HEX64,
            "purpose": {"type": "string", "enum": list(REPORT_PURPOSES)},
            "basis": {"type": "string", "description": "why the reader may read: consent, subject or regulator"},
            "as_of": _DATE,
            "height": {"type": "integer", "description": "chain height the report was built at"},
            "query": {"allOf": [_ref("ReportQuery")], "description": "the recorded report.query that allowed this read"},
            "report": {"type": "object", "description": "the cross-institution credit report"},
        }
    )
    schemas["StateValue"] = _object({"key": {"type": "string"}, "value": {}}, {"proof": {"type": "object"}})
    schemas["Event"] = _object(
        {
            "height": {"type": "integer"},
            "type": {"type": "string"},
            "tx_id": {"type": "string", "nullable": True},
            "index": {"type": "integer", "nullable": True},
            "members": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "object"},
        }
    )
    return {"schemas": schemas}


@functools.lru_cache(maxsize=1)
def _build_cached() -> dict[str, Any]:
    paths = _paths()
    for path_item in paths.values():
        for operation in path_item.values():
            operation.setdefault("parameters", []).append(_LANGUAGE_HEADER)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Xinlian (信链) node API",
            "version": API_VERSION,
            "description": "HTTP API of one Xinlian consortium node. Errors always have the Error shape.",
        },
        "paths": paths,
        "components": _components(),
    }


def build_document() -> dict[str, Any]:
    """Return the OpenAPI document; it is built once per process and copied per call."""
    return copy.deepcopy(_build_cached())
