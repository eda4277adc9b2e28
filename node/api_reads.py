"""Read endpoints of the HTTP API: transactions, blocks, status, state objects, proofs and credit reports.

Every path parameter is checked against its documented form before the
backend is called, so a malformed id is a 400 and an unknown one a 404.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from node import i18n
from node.api_errors import ApiError, json_response, request_language
from node.execution import ContractError
from node.privacy.errors import PrivacyError, message_for as privacy_message_for

if TYPE_CHECKING:
    from node.api import ApiBackend

BACKEND_KEY: web.AppKey["ApiBackend"] = web.AppKey("backend")

# Object kinds read through `ApiBackend.get_object`, with the path that serves each.
OBJECT_KINDS = {
    "member": "/v1/members/{object_id}",
    "loan": "/v1/loans/{object_id}",
    "loan_schedule": "/v1/loans/{object_id}/schedule",
    "case": "/v1/cases/{object_id}",
    "mandate": "/v1/mandates/{object_id}",
    "dispute": "/v1/disputes/{object_id}",
    "complaint": "/v1/complaints/{object_id}",
}
REPORT_PURPOSES = ("credit_query", "assessment", "collection", "data_sharing")
# Query parameters of the credit-report route, read from the signed request target.
REPORT_QUERY_PARAMETERS = ("purpose", "query_tx")
STATE_KEY_LENGTH_MAX = 512
HEIGHT_MAX = 2**63 - 1

_TX_ID = re.compile(r"[0-9a-f]{64}")
_OBJECT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SUBJECT_ID = re.compile(r"[0-9a-f]{64}")
_HEIGHT = re.compile(r"[0-9]{1,19}")
_STATE_KEY = re.compile(r"[\x21-\x7e]{1,%d}" % STATE_KEY_LENGTH_MAX)


def _backend(request: web.Request) -> "ApiBackend":
    return request.app[BACKEND_KEY]


def _path_parameter(request: web.Request, name: str, pattern: re.Pattern[str], expected: str) -> str:
    value = request.match_info[name]
    if not pattern.fullmatch(value):
        raise ApiError("invalid_path_parameter", {"parameter": name, "expected": expected})
    return value


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None or value in ("0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise ApiError("invalid_query_parameter", {"parameter": name, "expected": "1, 0, true or false"})


def _localized_receipt(record: dict[str, Any], language: str) -> dict[str, Any]:
    """Add a localized `error_message` to a committed transaction's failed receipt."""
    receipt = record.get("receipt")
    if isinstance(receipt, dict) and receipt.get("error_code"):
        record = dict(record)
        record["receipt"] = {**receipt, "error_message": i18n.message_for(str(receipt["error_code"]), language, _details_of(receipt))}
    return record


def _details_of(receipt: dict[str, Any]) -> dict[str, Any] | None:
    details = receipt.get("error_details")
    return details if isinstance(details, dict) else None


async def get_transaction(request: web.Request) -> web.Response:
    tx_id = _path_parameter(request, "tx_id", _TX_ID, "64 lowercase hex characters")
    record = _backend(request).get_transaction(tx_id)
    if record is None:
        raise ApiError("transaction_not_found", {"tx_id": tx_id})
    return json_response(_localized_receipt(record, request_language(request)))


async def get_latest_block(request: web.Request) -> web.Response:
    block = _backend(request).get_block(None)
    if block is None:
        raise ApiError("block_not_found", {"height": "latest"})
    return json_response(block)


async def get_block(request: web.Request) -> web.Response:
    text = _path_parameter(request, "height", _HEIGHT, "a block height: a non-negative decimal integer")
    height = int(text)
    if height > HEIGHT_MAX:
        raise ApiError("invalid_path_parameter", {"parameter": "height", "expected": f"at most {HEIGHT_MAX}"})
    block = _backend(request).get_block(height)
    if block is None:
        raise ApiError("block_not_found", {"height": height})
    return json_response(block)


async def get_status(request: web.Request) -> web.Response:
    return json_response(_backend(request).status())


async def get_members(request: web.Request) -> web.Response:
    return json_response({"members": _backend(request).list_members()})


async def get_params(request: web.Request) -> web.Response:
    return json_response({"params": _backend(request).get_params()})


def _object_handler(kind: str):
    async def handler(request: web.Request) -> web.Response:
        object_id = _path_parameter(request, "object_id", _OBJECT_ID, "1-64 characters of [A-Za-z0-9._:-]")
        value = _backend(request).get_object(kind, object_id)
        if value is None:
            raise ApiError("object_not_found", {"kind": kind, "id": object_id})
        return json_response(value)

    handler.__name__ = f"get_{kind}"
    return handler


async def get_state(request: web.Request) -> web.Response:
    """Return {"key", "value"}, plus "state_root" and "proof" with ?proof=1.

    A missing key is a 404 whose details still carry the proof of absence.
    NOTE: raw state reads need no signed request, unlike the credit report,
    although state contains the same pseudonymous records the report is built from.
    """
    key = _path_parameter(request, "key", _STATE_KEY, f"1-{STATE_KEY_LENGTH_MAX} printable ASCII characters")
    with_proof = _flag(request, "proof")
    backend = _backend(request)
    value = backend.read_state(key)
    proof_fields: dict[str, Any] = {}
    if with_proof:
        proof = backend.prove_state(key)
        proof_fields = {"state_root": proof["state_root"], "proof": proof["proof"]}
    if value is None:
        raise ApiError("state_key_not_found", {"key": key, **proof_fields})
    return json_response({"key": key, "value": value, **proof_fields})


def _signed_query_parameters(raw_path: str, names: tuple[str, ...]) -> dict[str, str]:
    """Parse `names` from the query of the signed request target, each at most once.

    The read signature covers the raw path with its query, so parameters
    taken from it are as authentic as the reader's key.
    """
    values = parse_qs(urlsplit(raw_path).query, keep_blank_values=True)
    parameters = {}
    for name in names:
        found = values.get(name, [])
        if len(found) > 1:
            raise ApiError("invalid_query_parameter", {"parameter": name, "expected": "the parameter at most once"})
        if found:
            parameters[name] = found[0]
    return parameters


async def get_subject_report(request: web.Request) -> web.Response:
    """Return a subject's credit report to a verified reader; the backend applies access control.

    `purpose` and `query_tx` come from the signed path. `query_tx` names the
    reader's committed `report.query` for this subject and purpose.
    """
    subject_id = _path_parameter(request, "subject_id", _SUBJECT_ID, "64 lowercase hex characters")
    parameters = _signed_query_parameters(request.raw_path, REPORT_QUERY_PARAMETERS)
    purpose = parameters.get("purpose", "credit_query")
    if purpose not in REPORT_PURPOSES:
        raise ApiError("invalid_query_parameter", {"parameter": "purpose", "expected": ", ".join(REPORT_PURPOSES)})
    query_tx = parameters.get("query_tx")

    backend = _backend(request)
    body = await request.read()
    try:
        reader = backend.verify_read_request(request.method, request.raw_path, body, request.headers)
        report = await backend.subject_report(subject_id, reader, purpose, query_tx)
    except PrivacyError as exc:
        raise _privacy_api_error(exc) from None
    except ContractError as exc:
        raise ApiError(exc.code, {"rule": exc.rule, **exc.details}) from None
    return json_response(report)


def _privacy_api_error(exc: PrivacyError) -> ApiError:
    code = exc.code
    return ApiError(code, exc.details, status=exc.http_status, localize=lambda language: privacy_message_for(code, language))


def add_read_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/v1/transactions/{tx_id}", get_transaction)
    router.add_get("/v1/blocks/latest", get_latest_block)
    router.add_get("/v1/blocks/{height}", get_block)
    router.add_get("/v1/status", get_status)
    router.add_get("/v1/members", get_members)
    router.add_get("/v1/params", get_params)
    for kind, path in OBJECT_KINDS.items():
        router.add_get(path, _object_handler(kind))
    router.add_get("/v1/state/{key:.+}", get_state)
    router.add_get("/v1/subjects/{subject_id}/report", get_subject_report)
