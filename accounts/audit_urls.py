"""The audit classification of accounts' URLs and of the platform's own (config/urls.py: the
admin site and the API schema and documentation), which belong to no app.

Admin pages of a registered model need no entry: registry.classify audits every one of them."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {}

EXEMPT: dict[str, str] = {
    "api-token": "sign-in: recorded as login/login_failed by the authentication signals",
    "api-schema": "OpenAPI schema, no data",
    "api-docs": "API documentation page, no data",
    "api-redoc": "API documentation page, no data",
    "admin:index": "admin home, no data",
    "admin:login": "sign-in: recorded by the authentication signals",
    "admin:logout": "sign-out, no data",
    "admin:password_change": "own password, no patient data",
    "admin:password_change_done": "no data",
    "admin:jsi18n": "translations, no data",
    "admin:app_list": "list of models, no data",
    "admin:autocomplete": "autocomplete is only reachable with view permission; low-volume lookups",
    "admin:view_on_site": "a redirect to the object's portal page, which is audited itself",
}
