"""The quality gate's reasons in the health worker's language (ml/ returns codes + English)."""

from django.utils.translation import gettext_lazy as _

QUALITY_MESSAGES = {
    "no_fundus": _(
        "Not a fundus photo: photograph the back of the eye through the pupil with the fundus camera or adaptor."
    ),
    "blurred": _("Blurred: hold the camera still, refocus on the optic disc and retake."),
    "too_dark": _("Too dark: increase the flash or illumination and retake."),
    "overexposed": _("Overexposed: reduce the flash or illumination and retake."),
    "poor_field": _(
        "Off-centre or cut off: centre the pupil so the whole round field is in the frame and retake."
    ),
    "too_small": _("Resolution too low: send the original photo, not a thumbnail."),
}


def quality_message(code: str, fallback: str) -> str:
    message = QUALITY_MESSAGES.get(code)
    return str(message) if message is not None else fallback
