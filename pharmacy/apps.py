from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PharmacyConfig(AppConfig):
    name = "pharmacy"
    verbose_name = _("Pharmacy and kiosks")

    def ready(self) -> None:
        from pharmacy import screening_hooks

        screening_hooks.register()
