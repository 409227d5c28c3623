"""EyeBridge screening model: preprocessing, quality gate, EfficientNet ensemble.

This package never imports Django; the Celery workers load it once per process.
"""

CLASSES: tuple[str, ...] = ("N", "D", "G", "C", "A", "H", "M", "O")

CLASS_NAMES: dict[str, str] = {
    "N": "normal",
    "D": "diabetic retinopathy",
    "G": "glaucoma",
    "C": "cataract",
    "A": "age-related macular degeneration",
    "H": "hypertensive retinopathy",
    "M": "pathological myopia",
    "O": "other abnormalities",
}

__all__ = ["CLASSES", "CLASS_NAMES"]
