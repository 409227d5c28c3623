"""The same short formats as Korean (config/formats/ko): a screening date reads the same to a
health worker in either language, and it sorts as text."""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
