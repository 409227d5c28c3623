"""The printable referral letter: one A4 PDF with what the receiving hospital needs to see the
patient (who, what the screening found in each eye with the photos and heatmaps, which model,
who screened, where and when the patient is expected), in Korean or English.

Built with ReportLab. Korean text needs a font with Hangul glyphs embedded in the PDF, or viewers
draw empty boxes; the font is looked up in ``FONT_CANDIDATES`` (or the one path named by
``REFERRAL_LETTER_FONT``), and when none can be loaded ``LetterFontUnavailable`` is raised rather
than printing an unreadable letter.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import threading
from dataclasses import dataclass
from html import escape

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from config.errors import ServiceError
from referrals.models import Referral
from screening import uploads
from screening.models import CLASS_NAMES, Eye, EyeResult, ScreeningImage, Triage
from screening.result_of_record import result_of_record
from screening.triage import reason_text

logger = logging.getLogger("eyebridge.referrals")

PLATFORM_NAME = "EyeBridge"
NANUM = "/usr/share/fonts/truetype/nanum"
NOTO = "/usr/share/fonts/opentype/noto"
# (regular, bold, index of the Korean face in a collection). ReportLab embeds TrueType outlines
# only: a collection with CFF outlines (Debian's Noto Sans CJK .ttc) is refused by TTFont and the
# lookup moves on, so the list is tried in order rather than trusting the first file that exists.
FONT_CANDIDATES: tuple[tuple[str, str, int], ...] = (
    (f"{NANUM}/NanumGothic.ttf", f"{NANUM}/NanumGothicBold.ttf", 0),
    (f"{NANUM}/NanumBarunGothic.ttf", f"{NANUM}/NanumBarunGothicBold.ttf", 0),
    (f"{NOTO}/NotoSansCJK-Regular.ttc", f"{NOTO}/NotoSansCJK-Bold.ttc", 1),  # 1: the KR face
)
# Photos are downscaled before embedding: 600 px is sharp at 80 mm on paper and keeps a letter
# with four images well under 1.5 MB.
IMAGE_MAX_PX = 600
IMAGE_QUALITY = 80
IMAGE_BOX = 80 * mm
EYE_ORDER = (Eye.RIGHT, Eye.LEFT)  # right eye first, as ophthalmologists write OD before OS


class LetterFontUnavailable(ServiceError):
    """No font able to render Korean could be loaded: the letter cannot be printed."""

    status_code = 503
    default_code = "letter_font_unavailable"


@dataclass(frozen=True)
class LetterFont:
    regular: str  # ReportLab font names, registered
    bold: str
    face_name: str  # the font's PostScript name, as it appears in the PDF


# Only fonts that loaded are kept: one installed after start-up is found on the next letter.
_fonts: dict[tuple[str, str, int], LetterFont] = {}
_fonts_lock = threading.Lock()


def _register(regular: str, bold: str, index: int) -> LetterFont | None:
    with _fonts_lock:
        font = _fonts.get((regular, bold, index)) or _load(regular, bold, index)
        if font is not None:
            _fonts[(regular, bold, index)] = font
        return font


def _load(regular: str, bold: str, index: int) -> LetterFont | None:
    if not os.path.isfile(regular):
        return None
    names = []
    for path in (regular, bold if os.path.isfile(bold) else regular):
        name = f"EBLetter-{os.path.basename(path)}-{index}"
        try:
            font = TTFont(name, path, subfontIndex=index)
        except (TTFError, OSError, ValueError) as exc:
            logger.warning("referral letter: cannot use font %s: %s", path, exc)
            return None
        pdfmetrics.registerFont(font)
        names.append((name, font))
    (regular_name, regular_font), (bold_name, _bold) = names
    pdfmetrics.registerFontFamily(
        regular_name, normal=regular_name, bold=bold_name, italic=regular_name, boldItalic=bold_name
    )
    face = regular_font.face.name
    return LetterFont(
        regular=regular_name,
        bold=bold_name,
        face_name=face.decode() if isinstance(face, bytes) else str(face),
    )


def letter_font() -> LetterFont:
    """The first usable CJK font. ``REFERRAL_LETTER_FONT`` (setting or environment), a path to a
    TrueType file, replaces the list: a configured font that fails is an error, never a silent
    switch to another face."""
    override = settings.REFERRAL_LETTER_FONT
    override = override or os.environ.get("REFERRAL_LETTER_FONT", "")
    candidates = ((override, override, 0),) if override else FONT_CANDIDATES
    for regular, bold, index in candidates:
        font = _register(regular, bold, index)
        if font is not None:
            return font
    logger.error("referral letter: no CJK font found in %s", [c[0] for c in candidates])
    raise LetterFontUnavailable(
        _(
            "The referral letter cannot be created: no font for Korean text is installed on the "
            "server. Ask an administrator to install fonts-nanum."
        )
    )


def _thumbnail(path: str) -> tuple[bytes, int, int] | None:
    """The stored image as a small JPEG, or None when it cannot be read (the letter says so)."""
    if not path:
        return None
    try:
        data = uploads.read_stored(path)
        with PILImage.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (IMAGE_MAX_PX, IMAGE_MAX_PX))  # JPEG: decode at a reduced scale
            image = opened.convert("RGB")
        image.thumbnail((IMAGE_MAX_PX, IMAGE_MAX_PX))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=IMAGE_QUALITY, optimize=True)
    # Pillow reports a damaged file as OSError, SyntaxError, struct.error, zlib.error and more:
    # one unreadable picture must not cost the patient the whole letter.
    except Exception as exc:
        logger.warning("referral letter: cannot read image %s: %s", path, exc)
        return None
    return out.getvalue(), image.width, image.height


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class _Styles:
    def __init__(self, font: LetterFont) -> None:
        def style(
            name: str, bold: bool = False, size: float = 9.5, leading: float = 13, space: float = 0
        ) -> ParagraphStyle:
            return ParagraphStyle(
                name,
                fontName=font.bold if bold else font.regular,
                fontSize=size,
                leading=leading,
                spaceBefore=2 * space,
                spaceAfter=space,
            )

        self.body = style("body")
        self.small = style("small", size=8, leading=10.5)
        self.label = style("label", bold=True)
        self.brand = style("brand", bold=True, size=16, leading=20)
        self.title = style("title", bold=True, size=14, leading=18)
        self.h2 = style("h2", bold=True, size=11, leading=15, space=4)
        self.h3 = style("h3", bold=True, space=2)


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


TIGHT = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]


def _rows(rows: list[tuple[str, object]], st: _Styles) -> Table:
    table = Table(
        [[_p(label, st.label), _p(value, st.body)] for label, value in rows],
        colWidths=[38 * mm, None],
        hAlign="LEFT",
    )
    table.setStyle(TableStyle([*TIGHT, ("TOPPADDING", (0, 0), (-1, -1), 1)]))
    return table


def _picture(path: str, caption: str, st: _Styles) -> list[Flowable]:
    thumb = _thumbnail(path)
    if thumb is None:
        return [_p(_("Photo not available"), st.small), _p(caption, st.small)]
    data, width, height = thumb
    scale = IMAGE_BOX / max(width, height)
    return [
        Image(io.BytesIO(data), width=width * scale, height=height * scale),
        _p(caption, st.small),
    ]


def _findings_text(codes: list[str]) -> str:
    names = [str(CLASS_NAMES[c]) for c in codes if c in CLASS_NAMES and c != "N"]
    return ", ".join(names) if names else _("No finding")


def _eye_section(
    eye: str, image: ScreeningImage | None, result: EyeResult | None, with_images: bool, st: _Styles
) -> Flowable:
    label = str(Eye(eye).label)
    story: list[Flowable] = [_p(label, st.h3)]
    if result is None:
        story.append(_p(_("No AI result for this eye."), st.body))
    else:
        story.append(_rows([(_("Findings"), _findings_text(result.findings or []))], st))
    heatmap = result.heatmap_path if result is not None else ""
    if with_images and (image is not None or heatmap):
        cells = [
            _picture(image.path, " · ".join([_("Fundus photo"), label]), st) if image else [],
            _picture(
                heatmap,
                " · ".join(filter(None, [_("Heatmap"), result.heatmap_class_name, label])),
                st,
            )
            if result is not None and heatmap
            else [],
        ]
        table = Table([cells], colWidths=[IMAGE_BOX + 4 * mm] * 2, hAlign="LEFT")
        table.setStyle(TableStyle(TIGHT))
        story.append(table)
    # An eye's heading, findings and pictures stay on one page.
    return KeepTogether(story)


def _when(value: dt.datetime | None) -> str:
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else ""


def _story(referral: Referral, with_images: bool, st: _Styles) -> list[Flowable]:
    screening = referral.screening
    patient = screening.patient
    site = screening.site
    worker = screening.health_worker
    english = translation.get_language() == "en"
    images = {i.eye: i for i in screening.images.all()}
    results = {r.eye: r for r in screening.results.all()}
    record = result_of_record(screening)
    screened_on = timezone.localtime(screening.completed_at or screening.created_at)
    age = _age(patient.birth_date, screened_on.date())
    age_text = ngettext("%(age)d year", "%(age)d years", age) % {"age": age}
    printed = _("Printed on %(date)s") % {"date": formats.date_format(timezone.localdate())}
    model_version = screening.model_version or next(
        (r.model_version for r in results.values() if r.model_version), ""
    )

    story: list[Flowable] = [
        _p(PLATFORM_NAME, st.brand),
        _p(_("Referral letter"), st.title),
        _p(" · ".join([_("Referral no. %(id)s") % {"id": referral.pk}, printed]), st.small),
        Spacer(1, 4 * mm),
        _p(_("Patient"), st.h2),
        _rows(
            [
                (_("Name"), patient.name),
                (capfirst(_("patient code")), patient.pseudonym),
                (_("Sex"), patient.get_sex_display()),
                (
                    _("Birth date"),
                    f"{formats.date_format(patient.birth_date)} ({age_text})",
                ),
                (_("Phone"), patient.phone or "—"),
            ],
            st,
        ),
        _p(_("Screening"), st.h2),
        _rows(
            [
                (_("Screening date"), _when(screened_on)),
                (
                    _("Screening site"),
                    site.name + (f" ({site.name_en})" if english and site.name_en else ""),
                ),
                (_("Health worker"), worker.get_full_name() or worker.get_username()),
                (_("Model"), model_version or "—"),
                (
                    _("Triage"),
                    str(Triage(record.triage).label) if record.triage in Triage.values else "—",
                ),
                (_("Findings"), _findings_text(record.findings)),
            ],
            st,
        ),
    ]
    if record.source != "ai":
        story.append(_p(_("Result reviewed by a grader"), st.small))
    reasons = [reason_text(r) for r in screening.reasons or [] if isinstance(r, dict | str)]
    if reasons:
        story.append(_p(_("Triage reasons"), st.label))
        story.extend(_p(f"• {r}", st.body) for r in reasons)

    story.append(_p(_("Findings per eye"), st.h2))
    if not with_images:
        story.append(
            _p(_("Photos are included only while the referral is with the hospital."), st.small)
        )
    for eye in EYE_ORDER:
        if eye in images or eye in results:
            story.append(_eye_section(eye, images.get(eye), results.get(eye), with_images, st))

    hospital = referral.hospital
    story.append(_p(_("Referred to"), st.h2))
    rows: list[tuple[str, object]] = [
        (_("Status"), referral.get_status_display()),
        (_("Urgency"), _("Urgent") if referral.is_urgent else _("Routine")),
    ]
    if hospital is None:
        rows.append((_("Hospital"), _("No hospital chosen yet")))
    else:
        name = hospital.name + (f" ({hospital.name_en})" if english and hospital.name_en else "")
        rows += [
            (_("Hospital"), name),
            (_("Address"), hospital.address or "—"),
            (_("Phone"), hospital.phone or "—"),
        ]
    rows.append(
        (
            _("Appointment"),
            _when(referral.appointment_at) if referral.appointment_at else _("Not yet booked"),
        )
    )
    if referral.diagnosis:
        rows.append((_("Diagnosis"), referral.diagnosis))
    story.append(_rows(rows, st))
    return story


def referral_letter_pdf(*, referral: Referral, language: str, with_images: bool = True) -> bytes:
    """The letter as PDF bytes, every label in ``language``. ``with_images`` is False for a
    reader who may see the referral but not its photographs (a hospital after declining)."""
    font = letter_font()
    buffer = io.BytesIO()
    with translation.override(language):
        st = _Styles(font)
        footer = _(
            "This letter reports a screening result, not a diagnosis: the findings come from an "
            "AI screening and must be confirmed by an ophthalmologist."
        )
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=24 * mm,
            title=" ".join([_("Referral letter"), str(referral.pk)]),
            author=PLATFORM_NAME,
            lang=language,
        )

        def on_page(canvas: Canvas, document: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setStrokeColor(colors.grey)
            canvas.line(doc.leftMargin, 20 * mm, A4[0] - doc.rightMargin, 20 * mm)
            note = Paragraph(
                escape(" · ".join([footer, _("Page %(page)d") % {"page": document.page}])),
                st.small,
            )
            _w, height = note.wrap(A4[0] - doc.leftMargin - doc.rightMargin, 18 * mm)
            note.drawOn(canvas, doc.leftMargin, 18 * mm - height)
            canvas.restoreState()

        doc.build(_story(referral, with_images, st), onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
