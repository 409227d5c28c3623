from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = _("Referrals")

    def ready(self) -> None:
        # result_tasks is imported for Celery, which discovers only tasks.py: it holds the task
        # that settings.SCREENING_RESULT_CHANGED_TASKS names.
        from referrals import recall_hooks, result_tasks, screening_hooks  # noqa: F401

        screening_hooks.register()
        recall_hooks.register()
