"""The FHIR media type for the three FHIR exports (screening, prescription, referral).

FHIR clients send ``Accept: application/fhir+json`` (often with ``; fhirVersion=4.0``); with
only DRF's JSON renderer such a request was refused with 406 before the view ran. The exports
answer ``application/fhir+json`` by default and still answer a plain ``application/json``.

The answer declares its FHIR version in the Content-Type (``application/fhir+json;
fhirVersion=4.3``, R4B). The renderer's own media type stays bare: DRF matches a renderer only
when every parameter it names is in the Accept header, so a parameter there would turn a plain
``Accept: application/fhir+json`` into a 406. A client that asks for ``fhirVersion=4.0`` gets the
R4B answer, which is R4-compatible for everything we export (config/fhir.py), labelled as 4.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework.renderers import JSONRenderer

from config.fhir import DESCRIPTION, FHIR_CONTENT_TYPE, FHIR_MEDIA_TYPE


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_MEDIA_TYPE
    format = "fhir"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        # Response.rendered_content has set the renderer's bare media type just before calling
        # us; a view that chose its own content type keeps it.
        if response is not None and response.content_type is None:
            response["Content-Type"] = FHIR_CONTENT_TYPE
        return super().render(data, accepted_media_type, renderer_context)


FHIR_RENDERERS = [FhirJSONRenderer, JSONRenderer]


def fhir_schema_responses(ok: Any, errors: Mapping[int, Any]) -> dict[tuple[int, str], Any]:
    """The OpenAPI responses of a FHIR export, each under both media types it can answer in.

    Errors too: DRF renders them with the negotiated renderer, so a FHIR client's 404 comes as
    ``application/fhir+json`` and a plain JSON client's as ``application/json``. The 200 answer
    says which FHIR version it is (one sentence for the three exports, from config/fhir.py).
    """
    if isinstance(ok, OpenApiResponse):
        said = f"{ok.description}. " if ok.description else ""
        ok = OpenApiResponse(ok.response, description=f"{said}{DESCRIPTION}.", examples=ok.examples)
    else:
        ok = OpenApiResponse(ok, description=f"{DESCRIPTION}.")
    out: dict[tuple[int, str], Any] = {}
    for media in (FHIR_MEDIA_TYPE, JSONRenderer.media_type):
        out[(200, media)] = ok
        out.update({(code, media): response for code, response in errors.items()})
    return out
