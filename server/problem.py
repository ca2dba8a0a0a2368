"""Errors as RFC 9457 problem documents: the one place a KluisError becomes an HTTP answer.

Every error answer of every kluis service is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail`` (when there is one) and our stable ``code``. The status comes
from the error's family (specs/errors.md, "Families"), unless the error class names a more
precise one in ``http_status`` (413, 429, ...). An error field called ``retry_after`` also
becomes a ``Retry-After`` header. ``title`` is the plain-language message in the language the
client asks for (``Accept-Language``: Dutch unless it prefers English).

``type`` is ``<service base URL>/problems/<code>``, and that URL answers with a short JSON
description of the problem type, so a developer who meets a code can look it up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from vault import (
    Conflict,
    InvalidInput,
    KluisError,
    Lang,
    NotFound,
    NotPermitted,
    Unavailable,
    VerificationFailed,
    family_of,
)

PROBLEM_JSON = "application/problem+json"

# Documented in specs/errors.md ("Families"); kept in step with cli/output.py's exit codes.
FAMILY_STATUS: dict[type[KluisError], int] = {
    KluisError: 500,
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
    NotPermitted: 403,
    VerificationFailed: 422,
    Unavailable: 503,
}


class MalformedJson(InvalidInput):
    code = "http.malformed_json"
    en = "The request body is not valid JSON. Send a JSON document."
    nl = "De inhoud van het verzoek is geen geldige JSON. Stuur een JSON-document."


class InvalidRequest(InvalidInput):
    code = "http.invalid_request"
    en = "The request has missing, extra or wrong fields. Check the fields and try again."
    nl = (
        "Het verzoek heeft ontbrekende, extra of verkeerde velden. "
        "Controleer ze en probeer opnieuw."
    )


class BodyTooLarge(InvalidInput):
    code = "http.body_too_large"
    en = "The request is too large. Send less data at a time."
    nl = "Het verzoek is te groot. Stuur minder gegevens tegelijk."
    http_status: ClassVar[int] = 413


class NoRoute(NotFound):
    code = "http.no_route"
    en = "There is nothing at this address. Check the URL."
    nl = "Op dit adres staat niets. Controleer de URL."


class MethodNotAllowed(InvalidInput):
    code = "http.method_not_allowed"
    en = "This address does not accept this kind of request. Check the method."
    nl = "Dit adres accepteert dit soort verzoek niet. Controleer de methode."
    http_status: ClassVar[int] = 405


class ProblemType(BaseModel):
    """What a problem type (an error code) means: ``GET /problems/{code}``."""

    code: str
    family: str
    status: int
    title: dict[str, str]


def status_of(error: KluisError) -> int:
    """The HTTP status for ``error``: its own ``http_status``, else its family's."""
    own = getattr(type(error), "http_status", None)
    return own if isinstance(own, int) else FAMILY_STATUS[family_of(error)]


def negotiate_lang(accept_language: str | None) -> Lang:
    """English when the client ranks English before Dutch; Dutch otherwise (our default)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().lower().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        if tag.startswith("en"):
            return "en"
        if tag.startswith("nl"):
            return "nl"
    return "nl"


def problem_document(
    error: KluisError, *, lang: Lang, type_base: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The RFC 9457 §3 members for ``error`` (never a secret: errors carry none)."""
    status = status_of(error)
    document: dict[str, Any] = {
        "type": f"{type_base}{error.code}" if error.code else "about:blank",
        "title": error.message(lang) or HTTPStatus(status).phrase,
        "status": status,
    }
    if error.code:
        document["code"] = error.code
    if error.detail:
        document["detail"] = error.detail
    document.update(extra or {})
    return document


def problem_response(
    error: KluisError,
    *,
    lang: Lang,
    type_base: str,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """``error`` as an ``application/problem+json`` response with its status and headers."""
    headers: dict[str, str] = {}
    if "retry_after" in error.fields:
        headers["Retry-After"] = str(max(1, int(error.fields["retry_after"])))
    return JSONResponse(
        problem_document(error, lang=lang, type_base=type_base, extra=extra),
        status_code=status_of(error),
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _type_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/problems/"


def _respond(
    request: Request, error: KluisError, extra: dict[str, Any] | None = None
) -> JSONResponse:
    lang = negotiate_lang(request.headers.get("accept-language"))
    return problem_response(error, lang=lang, type_base=_type_base(request), extra=extra)


async def _on_kluis_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, KluisError):  # pragma: no cover - registered for KluisError only
        raise error
    return _respond(request, error)


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    issues = error.errors() if isinstance(error, RequestValidationError) else []
    if any(issue.get("type") == "json_invalid" for issue in issues):
        return _respond(request, MalformedJson("RFC 8259"))
    # Where and what, never the offending input itself: it may be large or hostile.
    listed = [
        {"loc": [str(part) for part in issue.get("loc", ())], "msg": str(issue.get("msg", ""))}
        for issue in issues[:20]
    ]
    return _respond(request, InvalidRequest(), extra={"errors": listed})


# FastAPI answers 400 itself only when it cannot parse a body at all (e.g. nested too deeply).
_BY_STATUS: dict[int, type[KluisError]] = {
    400: MalformedJson,
    404: NoRoute,
    405: MethodNotAllowed,
    413: BodyTooLarge,
}


async def _on_http_exception(request: Request, error: Exception) -> JSONResponse:
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    known = _BY_STATUS.get(status)
    if known is not None:
        response = _respond(request, known())
    else:
        response = JSONResponse(
            {"type": "about:blank", "title": str(getattr(error, "detail", "")), "status": status},
            status_code=status,
            media_type=PROBLEM_JSON,
        )
    if status == 405 and isinstance(error, StarletteHTTPException) and error.headers:
        response.headers["Allow"] = error.headers.get("Allow", "")
    return response


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # A bug, not the client's fault: say nothing about it beyond the status.
    return JSONResponse(
        {"type": "about:blank", "title": "Internal Server Error", "status": 500},
        status_code=500,
        media_type=PROBLEM_JSON,
    )


def _all_error_classes() -> Iterator[type[KluisError]]:
    stack = list(KluisError.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__dict__.get("code"):
            yield cls


def describe_problem_type(code: str) -> dict[str, Any]:
    """What the problem type ``code`` means, in both languages; raises ``NoRoute``."""
    for cls in _all_error_classes():
        if cls.code == code:
            own = getattr(cls, "http_status", None)
            family = next((f for f in FAMILY_STATUS if f is not KluisError and issubclass(cls, f)),
                          KluisError)
            return {
                "code": code,
                "family": family.__name__,
                "status": own if isinstance(own, int) else FAMILY_STATUS[family],
                "title": {"en": cls.en, "nl": cls.nl},
            }
    raise NoRoute()


# --- the OpenAPI document -------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document with kluis's stable error code.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "<base URL>/problems/<code>, or about:blank"},
        "title": {"type": "string", "description": "What happened, in plain language."},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "The stable code (specs/errors.md)."},
        "detail": {"type": "string", "description": "The spec rule that was broken."},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_BODY_METHODS = frozenset({"post", "put", "patch", "delete"})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with a problem document."""
    return {status: {"description": f"{HTTPStatus(status).phrase} (problem document)",
                     "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}
            for status in statuses}


def _document_operation(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validated = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in str(validated.get("schema", "")):
        del responses["422"]  # our handler answers validation errors with 400 problems
    common = [429, 500, 503]
    if operation.get("parameters") or operation.get("requestBody"):
        common.append(400)
    if method in _BODY_METHODS:
        common += [400, 413]
    for status, response in problem_responses(*common).items():
        responses.setdefault(str(status), response)


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document say how it fails: every operation lists the problem
    documents any route can give (400 for malformed input, 413 for a too-large body, 429
    for the rate limit, 500, 503 for an unreachable store) beside the ones its route
    declares, and FastAPI's 422 validation answer (which kluis never gives) is dropped."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                if method in ("get", "post", "put", "patch", "delete", "head", "options"):
                    _document_operation(method, operation)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        used = json.dumps(schema["paths"])
        for name in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{name}" not in used:
                schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error answer of ``app`` a problem document, serve ``/problems/{code}``,
    and document the problem answers in the app's OpenAPI document."""
    document_problems(app)
    app.add_exception_handler(KluisError, _on_kluis_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)

    @app.get("/problems/{code}", tags=["problems"], summary="What an error code means",
             response_model=ProblemType, responses=problem_responses(404))
    def problem_type(code: str) -> dict[str, Any]:
        return describe_problem_type(code)
