from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from accounts import audit

        # Every app's audit_urls module, now that all apps are loaded; then the sign-in receivers.
        audit.collect()
        audit.connect_signals()
