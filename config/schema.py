"""OpenAPI schema naming: unique component names and operation ids, so that the schema is
unambiguous and `check --deploy` (which runs drf-spectacular's schema check) has no warnings."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from config.renderers import FHIR_MEDIA_TYPE


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer, direction):
        # HackSoft style nests `InputSerializer` / `OutputSerializer` in each API view: name them
        # after the view (PatientListCreateApi.InputSerializer -> PatientListCreateInput), or all
        # of them would be one "Input" component.
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return outer.split(".")[-1].removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)

    def get_operation_id(self) -> str:
        # A GET without path parameters is a collection read; DRF's APIView lists are not
        # recognised as lists by drf-spectacular and would collide with the detail GET.
        if self.method == "GET" and "{" not in self.path and not self._is_list_view():
            tokens = [t.replace("-", "_") for t in self._tokenize_path()] or ["root"]
            return "_".join([*tokens, "list"])
        return super().get_operation_id()


# Every 4xx body is an object: `{"detail", "code"}` from the service errors and DRF, or per-field
# lists from validation (`{"field": ["message"]}`), or both. One permissive component describes
# them all; the per-view error schemas that required detail+code did not match validation errors.
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` and `code` (service and authentication errors), or per-field lists "
    "of messages (validation errors).",
    # No type on `code`: a string for service errors, but a list of messages when the input field
    # itself is named `code` (the kiosk's dispense code).
    "properties": {"detail": {"type": "string"}, "code": {"description": "Error code"}},
    "additionalProperties": True,
}
ERROR_TEXT = {
    400: "Invalid input: per-field errors, or `detail` + `code`",
    401: "Not authenticated, or invalid credentials",
    403: "Authenticated but not allowed (wrong role, or two-factor verification required)",
    404: "Not found, or belongs to another organisation (indistinguishable on purpose)",
    415: "Unsupported media type: the body could not be read as any of the documented types",
}


def error_response(description: str) -> OpenApiResponse:
    """A status particular to one operation (a 409 conflict, a 429). The statuses every operation
    shares (400, 401, 403, 404, 415) are not declared by the views: `document_errors` adds them,
    and gives every 4xx the one `Error` body."""
    return OpenApiResponse(OpenApiTypes.OBJECT, description=description)


def document_errors(result: dict, generator, request, public: bool) -> dict:  # noqa: ARG001
    """Postprocessing hook (see docs/reliability.md, "API fuzzing"): document
    the error statuses every operation can answer, with one accurate body schema. 400 where the
    operation takes parameters or a body; 401 and 403 where it needs credentials; 404 where the
    path names an object (and for an id the URL converter rejects, which config/urls.py answers
    with a JSON 404)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    body = {"schema": {"$ref": "#/components/schemas/Error"}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            wanted = set()
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.add(400)
            if operation.get("requestBody"):
                # DRF answers 415 when no parser takes the body, e.g. a multipart body whose
                # boundary does not parse.
                wanted.add(415)
            security = operation.get("security", result.get("security", []))
            if security and {} not in security:
                wanted |= {401, 403}
            if "{" in path:
                wanted.add(404)
            for status in wanted:
                responses.setdefault(str(status), {"description": ERROR_TEXT[status]})
            # Errors come in the negotiated media type: a FHIR export's errors also as FHIR JSON.
            ok = responses.get("200", {}).get("content", {})
            media = ["application/json", *(m for m in ok if m.startswith(FHIR_MEDIA_TYPE))]
            for status, response in responses.items():
                if status.startswith("4"):
                    response["content"] = dict.fromkeys(media, body)
    return result
