# The daily roll-up of the dashboard's figures (dashboard.models.RollupDay, DailySiteStats).

import django.db.models.deletion
from django.db import migrations, models


def _count(name):
    return (name, models.PositiveIntegerField(default=0))


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
        ("screening", "0002_eyeresult_heatmap_class"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupDay",
            fields=[
                ("day", models.DateField(primary_key=True, serialize=False)),
                ("computed_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "dashboard roll-up day",
                "verbose_name_plural": "dashboard roll-up days",
            },
        ),
        migrations.CreateModel(
            name="DailySiteStats",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                _count("screenings"),
                _count("triage_normal"),
                _count("triage_medication"),
                _count("triage_referable"),
                _count("triage_urgent"),
                _count("triage_ungradable"),
                _count("images"),
                _count("images_gradable"),
                _count("results"),
                _count("positive_n"),
                _count("positive_d"),
                _count("positive_g"),
                _count("positive_c"),
                _count("positive_a"),
                _count("positive_h"),
                _count("positive_m"),
                _count("positive_o"),
                _count("referrals"),
                _count("referrals_cancelled"),
                _count("referrals_open"),
                _count("reached_sent"),
                _count("reached_accepted"),
                _count("reached_attended"),
                _count("reached_completed"),
                _count("declined"),
                _count("no_show"),
                ("waits", models.JSONField(blank=True, default=list)),
                (
                    "day",
                    models.ForeignKey(
                        db_column="day",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sites",
                        to="dashboard.rollupday",
                    ),
                ),
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
                "verbose_name": "dashboard daily site figures",
                "verbose_name_plural": "dashboard daily site figures",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("day", "site"), name="dashboard_dailysitestats_day_site"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("images_gradable__lte", models.F("images"))),
                        name="dashboard_dailysitestats_gradable_lte_images",
                    ),
                ],
            },
        ),
    ]
