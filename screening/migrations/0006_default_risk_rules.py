"""The default risk-factor TriageRules, shipped as data (docs/decisions.md, "Risk factors").

Every disease class shares one threshold, 0.283 (ml/MODEL_CARD.md, "The refer decision"). For a
patient with a risk factor a missed case costs more, so their class's threshold is lower:

* diabetes -> D (diabetic retinopathy) at 0.20: at 0.283 the bundle finds 70 % of D eyes on
  validation (specificity 82 %, AUC 0.853); 0.20 is the estimated point of ~85 % sensitivity
  (specificity ~68 %) for the patients whose retinopathy the screen exists for;
* family history of glaucoma -> G at 0.18: at 0.283 G finds half the G eyes (specificity 98 %,
  AUC 0.903); 0.18 is the 95th percentile of G over normal calibration eyes
  (ml/weights/default/metrics.json, base_5pct_fpr), i.e. ~5 % of normal eyes flagged for G in
  those patients instead of ~2 %.

Idempotent: a row an admin already has for the same class and risk factor is left as it is, and
running it again creates nothing. Reversing removes only rows still holding the shipped value.
"""

from django.db import migrations

DEFAULT_RULES = (
    # (class_code, risk_factor, threshold)
    ("D", "has_diabetes", 0.20),
    ("G", "family_history_glaucoma", 0.18),
)


def add_default_rules(apps, schema_editor) -> None:
    TriageRule = apps.get_model("screening", "TriageRule")
    for class_code, risk_factor, threshold in DEFAULT_RULES:
        TriageRule.objects.get_or_create(
            class_code=class_code,
            risk_factor=risk_factor,
            defaults={"threshold": threshold, "referable": True},
        )


def remove_default_rules(apps, schema_editor) -> None:
    TriageRule = apps.get_model("screening", "TriageRule")
    for class_code, risk_factor, threshold in DEFAULT_RULES:
        TriageRule.objects.filter(
            class_code=class_code, risk_factor=risk_factor, threshold=threshold
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0005_recall")]

    operations = [migrations.RunPython(add_default_rules, remove_default_rules)]
