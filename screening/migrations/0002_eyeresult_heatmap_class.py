from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="eyeresult",
            name="heatmap_class",
            field=models.CharField(blank=True, default="", max_length=1),
        ),
    ]
