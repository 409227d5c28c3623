"""The default risk-factor TriageRules moved to the refer decision's finding-score scale.

Bundle lite0-d85eae97e585 (the weights of lite0-384dcffa3fdb, its decision re-fitted) flags an
eye when some class's finding score, the class's probability averaged with the probability that
the eye is not normal (ml.decision), reaches one shared threshold (ml/MODEL_CARD.md, "The refer decision"). The two rows migration 0006 shipped
were probabilities; on the new scale they are (ml/weights/default/config.yaml,
decision.risk_factor_points, read off the calibration split): the threshold at which that
class's own score flags 10 more in 100 normal eyes than at the shared threshold, the price of
fewer missed cases for the patients the rule exists for:

* diabetes -> D at 0.318 (D eyes found by their D score: 76 % -> 83 % on calibration);
* family history of glaucoma -> G at 0.289 (G eyes: 72 % -> 75 %).

Only rows still holding 0006's shipped value change: an admin's own value stays. Reversing puts
back 0006's values on rows that still hold these.
"""

from django.db import migrations

# (class_code, risk_factor, 0006's value, this bundle's value)
MOVES = (
    ("D", "has_diabetes", 0.20, 0.318),
    ("G", "family_history_glaucoma", 0.18, 0.289),
)


def forwards(apps, schema_editor) -> None:
    TriageRule = apps.get_model("screening", "TriageRule")
    for class_code, risk_factor, old, new in MOVES:
        TriageRule.objects.filter(
            class_code=class_code, risk_factor=risk_factor, threshold=old
        ).update(threshold=new)


def backwards(apps, schema_editor) -> None:
    TriageRule = apps.get_model("screening", "TriageRule")
    for class_code, risk_factor, old, new in MOVES:
        TriageRule.objects.filter(
            class_code=class_code, risk_factor=risk_factor, threshold=new
        ).update(threshold=old)


class Migration(migrations.Migration):
    dependencies = [("screening", "0006_default_risk_rules")]

    operations = [migrations.RunPython(forwards, backwards)]
