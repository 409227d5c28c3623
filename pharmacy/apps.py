from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PharmacyConfig(AppConfig):
    name = "pharmacy"
    verbose_name = _("Pharmacy and kiosks")

    def ready(self) -> None:
        # result_tasks is imported for Celery, which discovers only tasks.py: it holds the task
        # that settings.SCREENING_RESULT_CHANGED_TASKS names.
        from pharmacy import result_tasks, screening_hooks  # noqa: F401

        screening_hooks.register()
