"""The portal's read form: per photographed eye (gradable, findings, DR grade), then the next step
and a note. It only parses; grading.services.grader_read_submit validates and decides."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from grading.models import OPEN_STAGE_CHOICES, DrGrade
from grading.services import EyeReadInput, ReadInput
from screening.models import CLASS_CODES, CLASS_NAMES, Triage

# Lazy: the labels follow the language of each request, not the one active at import.
FINDING_CHOICES = [(c, format_lazy("{} · {}", c, CLASS_NAMES[c])) for c in CLASS_CODES if c != "N"]
GRADABLE_CHOICES = [("yes", _("Gradable")), ("no", _("Not gradable"))]


class ReadForm(forms.Form):
    stage = forms.ChoiceField(choices=OPEN_STAGE_CHOICES, widget=forms.HiddenInput)
    next_step = forms.ChoiceField(
        label=_("Next step for the patient"), choices=Triage.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, eyes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eyes = eyes
        for eye in eyes:
            self.fields[f"{eye}_gradable"] = forms.ChoiceField(
                label=_("Photo quality"),
                choices=GRADABLE_CHOICES,
                initial="yes",
                widget=forms.RadioSelect,
            )
            self.fields[f"{eye}_findings"] = forms.MultipleChoiceField(
                label=_("Findings (none checked: no finding)"),
                choices=FINDING_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )
            self.fields[f"{eye}_dr_grade"] = forms.ChoiceField(
                label=_("Diabetic retinopathy grade (with D)"),
                choices=[("", "—"), *DrGrade.choices],
                required=False,
            )

    def eye_fields(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (eye, [self[f"{eye}_gradable"], self[f"{eye}_findings"], self[f"{eye}_dr_grade"]])
            for eye in self.eyes
        ]

    def read_input(self) -> ReadInput:
        data = self.cleaned_data
        return ReadInput(
            eyes=[
                EyeReadInput(
                    eye=eye,
                    gradable=data[f"{eye}_gradable"] == "yes",
                    findings=data[f"{eye}_findings"],
                    dr_grade=data[f"{eye}_dr_grade"],
                )
                for eye in self.eyes
            ],
            next_step=data["next_step"],
            note=data["note"],
        )

    def field_for(self, service_field: str | None) -> str | None:
        """The form field a service error names ("eyes.left.dr_grade" -> "left_dr_grade")."""
        if not service_field:
            return None
        parts = service_field.split(".")
        name = f"{parts[1]}_{parts[2]}" if len(parts) == 3 and parts[0] == "eyes" else parts[0]
        return name if name in self.fields else None
