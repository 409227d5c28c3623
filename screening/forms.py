from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from screening.models import Sex, Symptom


class PatientForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    birth_date = forms.DateField(
        label=_("Birth date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices)
    phone = forms.RegexField(
        label=_("Phone"),
        regex=r"^[0-9+\- ]{0,32}$",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    region = forms.CharField(label=_("Region"), max_length=100, required=False)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    home_latitude = forms.FloatField(
        label=_("Home latitude"), required=False, min_value=-90, max_value=90
    )
    home_longitude = forms.FloatField(
        label=_("Home longitude"), required=False, min_value=-180, max_value=180
    )
    has_diabetes = forms.BooleanField(label=_("Diabetes"), required=False)
    has_hypertension = forms.BooleanField(label=_("Hypertension"), required=False)
    family_history_glaucoma = forms.BooleanField(
        label=_("Family history of glaucoma"), required=False
    )
    high_myopia = forms.BooleanField(label=_("High myopia"), required=False)
    allergies = forms.CharField(
        label=_("Allergies"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    medical_notes = forms.CharField(
        label=_("Other conditions and medicines"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    consent_given = forms.BooleanField(
        label=_("The patient consents to screening and to the use of their data for their care"),
        required=True,
    )
    allow_duplicate = forms.BooleanField(widget=forms.HiddenInput, required=False)


class ScreeningForm(forms.Form):
    left_image = forms.FileField(
        label=_("Left eye photo"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png", "capture": "environment"}
        ),
    )
    right_image = forms.FileField(
        label=_("Right eye photo"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png", "capture": "environment"}
        ),
    )
    symptoms = forms.MultipleChoiceField(
        label=_("Symptoms"),
        choices=Symptom.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    accept_ungradable = forms.BooleanField(
        label=_("A retake was not gradable either: submit for an in-person examination referral"),
        required=False,
    )
