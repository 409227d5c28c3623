# The pharmacist's alert when a grader's final read changes a screening's result after its
# prescription was approved or dispensed (pharmacy.services.result). Choices only: no schema change.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pharmacy", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="pharmacyalert",
            name="kind",
            field=models.CharField(
                choices=[
                    ("dispense_failed", "Dispense failed"),
                    ("result_changed", "Screening result changed"),
                ],
                max_length=30,
                verbose_name="kind",
            ),
        ),
    ]
