"""The edge's OpenAPI document, generated from the command contracts: one operation per command,
its request body the command's JSON Schema, its answers the outcome shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import Command, CommandRejected, Envelope

Mode = Literal["validation", "serialization"]

_REF = "#/components/schemas/{model}"


def openapi_document(types: dict[str, type[Command]]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Mode]] = [(m, "validation") for m in types.values()]
    models += [(Envelope, "serialization"), (CommandRejected, "serialization")]
    refs, schema = models_json_schema(models, ref_template=_REF)
    components = dict(schema.get("$defs", {}))
    components["Outcome"] = {
        "type": "object",
        "required": ["command", "outcome"],
        "properties": {
            "command": refs[(Envelope, "serialization")],
            "outcome": {"type": "array", "items": refs[(Envelope, "serialization")]},
            "rejected": refs[(CommandRejected, "serialization")],
        },
    }
    components["Refusal"] = {
        "type": "object",
        "required": ["error", "rule"],
        "properties": {"error": {"type": "string"}, "rule": {"type": "string"}},
    }
    paths: dict[str, Any] = {}
    for name, model in sorted(types.items()):
        paths[f"/commands/{name}"] = {
            "post": {
                "operationId": name.replace(".", "_"),
                "summary": (model.__doc__ or name).strip().splitlines()[0],
                "security": [{"signIn": []}],
                "parameters": [
                    _header("X-Acting-Position", "The position the caller acts in (AC17)"),
                    _header("Idempotency-Key", "Makes a retried request the same command"),
                    {
                        "name": "wait",
                        "in": "query",
                        "schema": {"type": "boolean", "default": True},
                        "description": "false: answer 202 once published",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(model, "validation")]}},
                },
                "responses": {
                    "200": _content("The events the command caused", "Outcome"),
                    "202": _content(
                        "Published; the outcome follows on the event topics", "Outcome"
                    ),
                    "400": _content("Invalid command, or dead-lettered", "Refusal"),
                    "401": _content("No valid sign-in token (TR01)", "Refusal"),
                    "413": _content("Body too large (TR08)", "Refusal"),
                    "415": _content("Not a JSON body", "Refusal"),
                    "422": _content("Refused: the rule and the reason", "Outcome"),
                    "504": _content("No outcome in time", "Outcome"),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Casework edge: command API",
            "version": "1",
            "description": (
                "Commands of the casework platform, published as the signed-in caller with an "
                "assertion bound to the message (TR02)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "signIn": {
                    "type": "openIdConnect",
                    "openIdConnectUrl": "/.well-known/openid-configuration",
                    "description": "An ID token of the issuer the platform trusts, as a bearer",
                }
            },
        },
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


def _content(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}},
    }
