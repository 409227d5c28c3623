"""Short dates zero-padded ("2026-12-02 04:50", not Django's Korean "2026-12-2 04:50"): rows line
up in tables and read the same in both languages. The long formats stay Django's."""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
