from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PharmacyConfig(AppConfig):
    name = "pharmacy"
    verbose_name = _("Pharmacy and kiosks")
