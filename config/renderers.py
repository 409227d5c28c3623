"""The FHIR media type for the three FHIR exports (screening, prescription, referral).

FHIR clients send ``Accept: application/fhir+json`` (often with ``; fhirVersion=4.0``); with
only DRF's JSON renderer such a request was refused with 406 before the view ran. The exports
answer ``application/fhir+json`` by default and still answer a plain ``application/json``.
"""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

FHIR_MEDIA_TYPE = "application/fhir+json"


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_MEDIA_TYPE
    format = "fhir"


FHIR_RENDERERS = [FhirJSONRenderer, JSONRenderer]
