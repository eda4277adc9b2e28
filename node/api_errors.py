"""Errors of the HTTP API: one JSON shape, localized, and a middleware that enforces it.

Every error response is `{"error": {"code", "message", "details"}}` with the
message in the language the client's Accept-Language header selects (zh-CN or
en, the node's configured language otherwise). The middleware turns aiohttp's
own HTTP errors (unknown path, wrong method, oversize body) into that shape, and
turns any unexpected exception into a logged 500 without a stack trace.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from node import i18n
from node.metrics import HttpMetrics

logger = logging.getLogger("xinlian.api")

DEFAULT_LANGUAGE_KEY = web.AppKey("default_language", str)
HTTP_METRICS_KEY = web.AppKey("http_metrics", HttpMetrics)

# Codes for aiohttp's own HTTP errors, by status.
_HTTP_STATUS_CODES = {
    400: "invalid_request_body",
    404: "path_not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error returned to the client with a stable `code`.

    `status` defaults to the catalogue's status for `code`. `localize`, when
    given, returns the message for a language and overrides the catalogue,
    for errors whose component owns its own wording of a shared code.
    """

    def __init__(
        self,
        code: str,
        details: Mapping[str, Any] | None = None,
        status: int | None = None,
        localize: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.details = dict(details or {})
        self.status = status if status is not None else i18n.status_for(code)
        self.localize = localize

    def body(self, language: str) -> dict[str, Any]:
        message = self.localize(language) if self.localize is not None else i18n.message_for(self.code, language, self.details)
        return {"error": {"code": self.code, "message": message, "details": self.details}}


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return a JSON response with UTF-8 text rather than \\u escapes, so Chinese stays readable."""
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def request_language(request: web.Request) -> str:
    """Return "zh-CN" or "en" for this request, from Accept-Language or the node's default."""
    default = request.app.get(DEFAULT_LANGUAGE_KEY, i18n.LANGUAGE_CHINESE)
    return i18n.negotiate_language(request.headers.get("Accept-Language"), default)


def error_response(request: web.Request, error: ApiError, headers: Mapping[str, str] | None = None) -> web.Response:
    response = json_response(error.body(request_language(request)), status=error.status, headers=headers)
    response.headers["Content-Language"] = request_language(request)
    if error.status == 413:
        # The rest of the oversize body was never read, so the connection cannot be reused.
        response.force_close()
    return response


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _HTTP_STATUS_CODES.get(exc.status)
    if code is None:
        code = "invalid_request_body" if exc.status < 500 else "service_unavailable"
    details: dict[str, Any] = {}
    if exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
        details = {"method": exc.method, "allowed_methods": sorted(exc.allowed_methods)}
    return ApiError(code, details, status=exc.status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Return every error in the one JSON shape and count every response by status."""
    metrics = request.app.get(HTTP_METRICS_KEY)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = error_response(request, _from_http_exception(exc), headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        # A bug: the client gets a 500 in the usual shape, the log gets the traceback.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        response = error_response(request, ApiError("internal_error", status=500))
    if metrics is not None:
        metrics.count_request(request.method, response.status)
    return response
