"""The audit classification of screening's URLs (collected by accounts.audit.registry)."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {
    # portal (screening/urls.py)
    "screening:worklist": Target("screening"),
    "screening:patient_list": Target("patient"),
    "screening:patient_create": Target("patient"),
    "screening:patient_detail": Target("patient"),
    "screening:patient_edit": Target("patient"),
    "screening:patient_consent": Target("patient"),
    "screening:recall_list": Target("patient"),
    "screening:screening_create": Target("screening"),
    "screening:screening_detail": Target("screening"),
    "screening:screening_status": Target("screening"),
    "screening:image_file": Target("screening_image"),
    "screening:heatmap_file": Target("eye_result"),
    # API (screening/api_urls.py)
    "api-patients": Target("patient"),
    "api-patient": Target("patient"),
    "api-patient-consent-withdraw": Target("patient"),
    "api-patient-erase": Target("patient"),
    "api-screenings": Target("screening"),
    "api-screening": Target("screening"),
    "api-screening-fhir": Target("screening", action="export"),
}

EXEMPT: dict[str, str] = {}
