"""The consent texts shipped as data (migration 0009 writes them; screening.consent restores the
current one in a database that lost it, e.g. a test database flushed after a transactional test).
A new wording is a new entry here and a new data migration: a text patients agreed to is never
edited."""

import datetime as dt

# (version, Korean, English, in use from)
TEXTS = (
    (
        "2025-01",
        "환자가 검진 및 진료 목적의 정보 이용에 동의합니다",
        "The patient consents to screening and to the use of their data for their care",
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    ),
    (
        "2026-12",
        "EyeBridge가 양쪽 눈의 안저를 촬영하고, 인공지능과 안과 의료진이 사진을 판독하며, "
        "나의 기록(이름, 생년월일, 전화번호, 건강 정보, 사진과 결과)을 검진 기관이 보관하고 "
        "진료에 필요한 약사 또는 병원과 공유하는 데 동의합니다. 검진 일정 안내 문자를 받을 수 "
        "있습니다. 이 동의는 언제든지 철회할 수 있으며, 철회하면 더 이상 처리하거나 연락하지 "
        "않습니다. 기록의 삭제(가명 처리)를 요청할 수 있고, 사진은 보관 기간이 지나면 삭제됩니다.",
        "I agree that EyeBridge photographs both my retinas, that an AI model and eye-care staff "
        "read the photos, and that my record (name, birth date, phone, health details, photos and "
        "results) is kept by my screening site and shared with the pharmacist or hospital my care "
        "needs. I may receive text reminders about screening. I can withdraw this consent at any "
        "time; from then on nothing more is done with my record and nobody contacts me about it. "
        "I can ask for my record to be erased (pseudonymised), and my photos are deleted after "
        "the retention period.",
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    ),
)
