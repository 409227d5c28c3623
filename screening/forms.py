from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from screening import regions
from screening.models import Patient, Sex, Site, Symptom

# Exact coordinates given with a region must lie this near its point: the largest 군 (홍천)
# reaches about 60 km from its office; farther, they belong elsewhere or hold a typo. The outer
# islands of 신안 lie farther still: there, leave the region empty and give the coordinates alone.
COORDINATES_NEAR_REGION_KM = 60.0
# A site is preselected as the district whose office is this near it (a 보건소 is in its
# county's main town, within a few km of the 군청).
SITE_DISTRICT_KM = 10.0


def _province_label(province: regions.Province) -> str:
    if (get_language() or "ko").startswith("ko"):
        return province.name
    return f"{province.name_en} ({province.name})"


def _district_label(district: regions.District) -> str:
    if (get_language() or "ko").startswith("ko"):
        return district.name
    return f"{district.name_en} ({district.name})"


class PatientForm(forms.Form):
    """Registration of a patient. The home is chosen as a 시/도 and 시/군/구 (screening.regions),
    and its coordinates derived here from the district's point, never taken from the page; exact
    coordinates, for who knows them, stay behind the template's "advanced" disclosure. With
    nothing chosen the home is the health worker's site (``site``, which also preselects its
    district), where the patient came from; a form given no site leaves the home unknown, and a
    referral then starts from the screening site all the same.

    ``cleaned_data`` holds exactly the fields of ``screening.services.PatientInput`` (and
    ``allow_duplicate``): the region fields become ``region``, ``home_latitude`` and
    ``home_longitude``."""

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
    sido = forms.ChoiceField(
        label=_("Province (시/도)"),
        required=False,
        widget=forms.Select(attrs={"aria-describedby": "home-region-help"}),
        error_messages={"invalid_choice": _("Choose a province from the list.")},
    )
    sigungu = forms.ChoiceField(
        label=_("City, county or district (시/군/구)"),
        required=False,
        widget=forms.Select(attrs={"aria-describedby": "home-region-help"}),
        error_messages={"invalid_choice": _("Choose a city, county or district from the list.")},
    )
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

    REGION_FIELDS = ("sido", "sigungu")

    def __init__(self, *args: Any, site: Site | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site
        empty = ("", "—")
        cast(forms.ChoiceField, self.fields["sido"]).choices = [empty] + [
            (p.code, _province_label(p)) for p in regions.PROVINCES
        ]
        # Grouped by province: without the page's script the list still reads as 시/도 > 시/군/구.
        cast(forms.ChoiceField, self.fields["sigungu"]).choices = [empty] + [
            (
                _province_label(p),
                [(d.code, _district_label(d)) for d in regions.districts_of(p.code)],
            )
            for p in regions.PROVINCES
        ]
        home = self.site_district()
        if home is not None:
            self.fields["sido"].initial = home.province_code
            self.fields["sigungu"].initial = home.code

    def site_district(self) -> regions.District | None:
        """The district the site is in, by the nearest district office (None if none is near)."""
        site = self.site
        if site is None or site.latitude is None or site.longitude is None:
            return None
        return regions.nearest_district(site.latitude, site.longitude, within_km=SITE_DISTRICT_KM)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean returns
        sido = data.pop("sido", "") or ""
        sigungu = data.pop("sigungu", "") or ""
        if self.errors:
            return data
        district = regions.district(sigungu) if sigungu else None
        province = regions.province(sido) if sido else None
        if district is not None and province is not None and district.province != province:
            self.add_error(
                "sigungu",
                _("%(district)s is not in %(province)s.")
                % {"district": district.name, "province": province.name},
            )
            return data
        if province is not None and district is None:
            self.add_error(
                "sigungu", _("Choose the city, county or district too, or leave both empty.")
            )
            return data
        lat, lon = data.get("home_latitude"), data.get("home_longitude")
        if (lat is None) != (lon is None):
            self.add_error("home_latitude", _("Give both home latitude and longitude, or neither."))
            return data
        if district is not None:
            data["region"] = district.label
            if lat is None or lon is None:  # both or neither, checked above
                lat, lon = district.latitude, district.longitude
            elif (
                regions.distance_km(lat, lon, district.latitude, district.longitude)
                > COORDINATES_NEAR_REGION_KM
            ):
                self.add_error(
                    "home_latitude",
                    _(
                        "These coordinates lie outside %(region)s. Correct them, or leave them "
                        "empty to use the centre of the region."
                    )
                    % {"region": district.label},
                )
                return data
        elif lat is None and self.site is not None and self.site.latitude is not None:
            lat, lon = self.site.latitude, self.site.longitude
            home = self.site_district()
            data["region"] = home.label if home is not None else self.site.region
        data["home_latitude"], data["home_longitude"] = lat, lon
        return data


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


class PatientEditForm(PatientForm):
    """A later visit's correction of the patient's demographics and risk factors: the
    registration form, filled in from the record, without the consent (recorded once, with who
    and when). ``cleaned_data`` holds the fields ``screening.services.patient_update`` changes."""

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        initial = {
            name: getattr(patient, name)
            for name in (
                "name",
                "birth_date",
                "sex",
                "phone",
                "address",
                "has_diabetes",
                "has_hypertension",
                "family_history_glaucoma",
                "high_myopia",
                "allergies",
                "medical_notes",
            )
        }
        home = _district_by_label(patient.region)
        # Not the site's district when the record names none: the page shows the record.
        initial.update(sido=home.province_code if home else "", sigungu=home.code if home else "")
        coordinates = patient.home_coordinates
        at_centre = home is not None and coordinates == (home.latitude, home.longitude)
        if coordinates is not None and not at_centre:
            # Exact coordinates someone entered stay visible (under "advanced") to be corrected;
            # a district's own centre is what choosing the district gives again.
            initial.update(home_latitude=coordinates[0], home_longitude=coordinates[1])
        super().__init__(*args, site=patient.site, initial=initial, **kwargs)
        del self.fields["consent_given"]

    HOME_INPUTS = ("sido", "sigungu", "home_latitude", "home_longitude")
    HOME_FIELDS = ("region", "home_latitude", "home_longitude")

    def changes(self) -> dict[str, Any]:
        """The cleaned fields for ``patient_update``. The home (region and coordinates, derived
        from the chosen district) only when its inputs were touched: a record whose region is no
        district of the list keeps it through an edit of, say, the phone number."""
        data = {k: v for k, v in self.cleaned_data.items() if k != "allow_duplicate"}
        if not set(self.changed_data) & set(self.HOME_INPUTS):
            for name in self.HOME_FIELDS:
                data.pop(name, None)
        return data


def _district_by_label(label: str) -> regions.District | None:
    return next((d for d in regions.DISTRICTS if d.label == label), None)
