# The field-performance agreement alert (dashboard.models.SiteAgreementAlert). Also carries the
# verbose names given to DashboardAccess's fields meanwhile, so that the migration state matches
# the models. Depends on a committed screening migration only (Site is older than all of them).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_daily_rollup"),
        ("screening", "0004_screening_result_of_record"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="dashboardaccess",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True, verbose_name="created"),
        ),
        migrations.AlterField(
            model_name="dashboardaccess",
            name="user",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="dashboard_access",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.CreateModel(
            name="SiteAgreementAlert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("raised_at", models.DateTimeField()),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("graded", models.PositiveIntegerField()),
                ("agreed", models.PositiveIntegerField()),
                ("threshold", models.FloatField()),
                (
                    "site",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="screening.site",
                    ),
                ),
            ],
            options={
                "verbose_name": "site agreement alert",
                "verbose_name_plural": "site agreement alerts",
                "ordering": ["-raised_at", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("resolved_at__isnull", True)),
                        fields=("site",),
                        name="dashboard_one_open_agreement_alert_per_site",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("agreed__lte", models.F("graded"))),
                        name="dashboard_agreement_alert_agreed_lte_graded",
                    ),
                ],
            },
        ),
    ]
