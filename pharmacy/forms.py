from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from pharmacy.models import Kiosk, Medication, Prescription, StockMovement


class ApproveForm(forms.Form):
    dose_ko = forms.CharField(label=_("Dose (Korean)"), max_length=1000)
    dose_en = forms.CharField(label=_("Dose (English)"), max_length=1000)
    frequency_ko = forms.CharField(label=_("Frequency (Korean)"), max_length=1000)
    frequency_en = forms.CharField(label=_("Frequency (English)"), max_length=1000)
    duration_ko = forms.CharField(label=_("Duration (Korean)"), max_length=1000)
    duration_en = forms.CharField(label=_("Duration (English)"), max_length=1000)
    warnings_ko = forms.CharField(
        label=_("Warnings (Korean)"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    warnings_en = forms.CharField(
        label=_("Warnings (English)"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    acknowledge_warnings = forms.BooleanField(
        label=_("I have reviewed the warnings above"), required=False
    )

    @classmethod
    def initial_for(cls, prescription: Prescription) -> dict[str, str]:
        """Prefill from the formulary's default guidance of the items."""
        initial: dict[str, str] = {}
        for field in ("dose", "frequency", "duration", "warnings"):
            for lang in ("ko", "en"):
                parts = []
                for item in prescription.items.all():
                    value = getattr(item.medication, f"default_{field}_{lang}")
                    if value:
                        parts.append(
                            value
                            if len(prescription.items.all()) == 1
                            else f"{item.medication.name_ko}: {value}"
                        )
                initial[f"{field}_{lang}"] = "\n".join(parts)
        return initial

    def counselling(self) -> dict[str, dict[str, str]]:
        data = self.cleaned_data
        return {
            lang: {f: data[f"{f}_{lang}"] for f in ("dose", "frequency", "duration", "warnings")}
            for lang in ("ko", "en")
        }


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class MedicationChoiceField(forms.ModelChoiceField):
    """A formulary item, labelled with its Korean name (and, with ``with_english``, its English
    name) and strength."""

    def __init__(self, *, with_english: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_english = with_english

    def label_from_instance(self, obj: Medication) -> str:
        if self.with_english:
            return f"{obj.name_ko} / {obj.name_en} {obj.strength}"
        return f"{obj.name_ko} {obj.strength}"


class RequestForm(forms.Form):
    medication = MedicationChoiceField(
        label=_("Medication"), queryset=Medication.objects.none(), with_english=True
    )
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=100, initial=1)
    note = forms.CharField(
        label=_("Note for the pharmacist"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, medications=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        medication = cast(MedicationChoiceField, self.fields["medication"])
        medication.queryset = medications if medications is not None else Medication.objects.none()


class StockAdjustForm(forms.Form):
    lot = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    delta = forms.IntegerField(label=_("Change"), min_value=-10000, max_value=10000)
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=[
            (StockMovement.Reason.ADJUST, StockMovement.Reason.ADJUST.label),
            (StockMovement.Reason.WRITE_OFF, StockMovement.Reason.WRITE_OFF.label),
        ],
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


class ReceiveForm(forms.Form):
    kiosk = forms.ModelChoiceField(label=_("Kiosk"), queryset=Kiosk.objects.none())
    slot = forms.RegexField(
        label=_("Slot"), regex=r"^[A-Z][0-9]{1,2}$", max_length=8, help_text=_("e.g. A1")
    )
    medication = MedicationChoiceField(label=_("Medication"), queryset=Medication.objects.none())
    lot_number = forms.CharField(label=_("Lot number"), max_length=40)
    expiry = forms.DateField(label=_("Expiry date"), widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=10000)

    def __init__(self, *args, kiosks=None, medications=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kiosk = cast("forms.ModelChoiceField[Kiosk]", self.fields["kiosk"])
        kiosk.queryset = kiosks if kiosks is not None else Kiosk.objects.none()
        medication = cast(MedicationChoiceField, self.fields["medication"])
        medication.queryset = medications if medications is not None else Medication.objects.none()
