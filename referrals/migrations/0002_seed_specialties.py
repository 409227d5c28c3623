from django.db import migrations

# Frozen copy of the specialty list at the time of this migration (Korean, English).
SPECIALTIES = [
    ("general", "일반 안과", "General ophthalmology"),
    ("retina", "망막", "Retina"),
    ("glaucoma", "녹내장", "Glaucoma"),
    ("cataract", "백내장·전안부", "Cataract / anterior segment"),
    ("neuro", "신경안과", "Neuro-ophthalmology"),
    ("paediatric", "소아안과", "Paediatric ophthalmology"),
    ("cornea", "각막", "Cornea"),
    ("oculoplastics", "성형안과", "Oculoplastics"),
]


def seed(apps, schema_editor):
    Specialty = apps.get_model("referrals", "Specialty")
    for code, name, name_en in SPECIALTIES:
        Specialty.objects.get_or_create(code=code, defaults={"name": name, "name_en": name_en})


class Migration(migrations.Migration):
    dependencies = [("referrals", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
