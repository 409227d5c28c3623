"""Settings shared by every environment. Everything deployment-specific comes from the environment.

With nothing set the platform runs on a bare machine: SQLite and kombu's filesystem transport, so
that web -> queue -> worker -> result is the same asynchronous path as in production.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("EYEBRIDGE_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "screening",
    "grading",
    "pharmacy",
    "referrals",
    "dashboard",
    # The project itself, for the commands that span the apps (`manage.py seed_demo`).
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.security.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Outside the session checks, so that a timed-out or OTP-redirected request is audited too.
    "accounts.audit.AuditMiddleware",
    "accounts.security.SessionTimeoutMiddleware",
    "accounts.security.OTPRequiredMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.security.SecurityHeadersMiddleware",
    # Last, as django-axes requires: turns a lockout flagged during authenticate() into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# Axes first: a locked-out username+IP is refused before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.AxesHttpBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "accounts.context_processors.notifications",
            ],
        },
    },
]

if not env_str("DATABASE_URL", ""):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'eyebridge.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must hold a result page's four image requests at once, each of which
    # writes an audit row (and fails closed if it cannot). WAL lets readers run beside the one
    # writer; IMMEDIATE takes the write lock at BEGIN, so a transaction that read first never has
    # to upgrade its lock (SQLite answers that upgrade with "database is locked" at once, without
    # waiting); the timeout is how long a writer waits its turn.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sign-in security (accounts.security, accounts.audit) -----------------------------------
# Brute force: 5 failures for one username from one IP lock that pair out for 15 minutes (a
# health worker mistyping on another device is not locked out); a success resets the count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Sign-ins are recorded in the audit trail (accounts.audit); axes keeps only failure counters.
AXES_DISABLE_ACCESS_LOG = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "accounts.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
# Reverse proxies we run in front of the app; 0: X-Forwarded-For is ignored (client-controlled).
AUDIT_TRUSTED_PROXY_COUNT = env_int("AUDIT_TRUSTED_PROXY_COUNT", 0)
# Sessions: signed out after 30 minutes idle and 12 hours after sign-in, whatever the activity.
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60)
SESSION_ABSOLUTE_TIMEOUT_SECONDS = env_int("SESSION_ABSOLUTE_TIMEOUT_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Two-factor: users of these roles who have enrolled a TOTP device must pass the code step after
# the password before any other page (and the API token endpoint needs the code too).
OTP_REQUIRED_ROLES = env_list("OTP_REQUIRED_ROLES", ["admin", "pharmacist"])
OTP_TOTP_ISSUER = "EyeBridge"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Korean first: the health workers and patients this serves are in Korea.
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Zero-padded short dates ("2026-12-02 04:50") in both languages; see config/formats/.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded fundus photos are patient data: never under STATIC, never served by the web server
# directly; screening.views streams them after an organisation check.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Photos and heatmaps go through Django's Storage API (screening.uploads): object storage is a
# backend away, e.g. STORAGE_BACKEND=storages.backends.s3.S3Storage with django-storages' AWS_*
# settings. The default writes atomically under MEDIA_ROOT (config.storage).
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "config.storage.AtomicFileSystemStorage")
STORAGES = {
    "default": {"BACKEND": STORAGE_BACKEND},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads: an eye photo from a fundus camera is a few MB; 15 MB leaves room for phone cameras.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 15 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
# Whole request body: two photos at the limit plus the form fields (accounts.security).
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 2 * UPLOAD_MAX_BYTES + 1024 * 1024)
# JSON API bodies (config.parsers): no API body is anywhere near these; a deeper or bigger one is
# an attack on the parser, refused with a 400 before it is built.
API_JSON_MAX_BYTES = env_int("API_JSON_MAX_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)

ML_WEIGHTS_DIR = Path(env_str("ML_WEIGHTS_DIR", str(BASE_DIR / "ml" / "weights" / "default")))
ML_DEVICE = env_str("ML_DEVICE", "auto")
ML_THREADS = env_int("ML_THREADS", 0) or None

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # kombu keeps its exchange bindings in "control/" under the working directory unless
        # told otherwise; broker state belongs under var/ with the rest.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Redis redelivers an unacknowledged task after the visibility timeout. It must exceed the
    # longest realistic task (inference soft limit 120 s, plus queueing behind a prefetched task),
    # or a healthy task would run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900)
    }
# Results are stored in our own tables; Celery's result backend is not needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"screening.tasks.screening_infer": {"queue": "inference"}}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE: dict = {
    "screening-sweep-stuck": {"task": "screening.tasks.screening_sweep_stuck", "schedule": 60.0},
}
# A screening stuck in queued/processing longer than this is re-enqueued by the sweeper.
SCREENING_STUCK_AFTER_SECONDS = env_int("SCREENING_STUCK_AFTER_SECONDS", 300)
SCREENING_MAX_ATTEMPTS = env_int("SCREENING_MAX_ATTEMPTS", 3)
# An inference delivery takes up to this many queued screenings through the network together
# (8 screenings = 16 eyes: one batch per branch). A lone screening never waits for company.
SCREENING_BATCH_SIZE = env_int("SCREENING_BATCH_SIZE", 8)
# Downstream steps after a screening result is stored, by task name so that screening never
# imports the apps that build on it (data flows screening -> pharmacy | referrals).
SCREENING_COMPLETED_TASKS = [
    "grading.tasks.grading_case_open",
    "pharmacy.tasks.prescription_propose_for_screening",
    "referrals.tasks.referral_propose_for_screening",
]
# The same, when a person's final read becomes a screening's result of record
# (screening.result_of_record): the referral and the prescriptions follow the final triage.
SCREENING_RESULT_CHANGED_TASKS = [
    "referrals.result_tasks.referral_follow_result_of_record",
    "pharmacy.result_tasks.prescription_follow_result_of_record",
]

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "not signed in" a 401, not a 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    # Depth/size-limited JSON that refuses NaN/Infinity (deep nesting was a RecursionError 500).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EyeBridge API",
    "DESCRIPTION": "Fundus screening, pharmacist-approved vending and hospital referral.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several components have a "status"; name the screening's so the names are stable. The
    # grading API uses the triage and its case stages in several fields: each named once.
    "ENUM_NAME_OVERRIDES": {
        "ScreeningStatusEnum": "screening.models.ScreeningStatus",
        "TriageEnum": "screening.models.Triage",
        "GradingCaseStageEnum": "grading.models.CaseStage",
        "GradingOpenStageEnum": "grading.models.OPEN_STAGE_CHOICES",
    },
}

# Messages to patients (dispense codes, referral updates). Console by default; an SMS gateway is
# another backend class.
MESSAGE_BACKEND = env_str("MESSAGE_BACKEND", "accounts.messaging.ConsoleBackend")
# accounts.messaging.SmsGatewayBackend posts {"to", "text"} here with a bearer token.
SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = env_str("SMS_GATEWAY_TOKEN", "")

# Notifications to staff (accounts.notifications) go by email through Django's mail backends. The
# console backend (the default, so `make run` prints each email in the worker's log) sends
# nothing; production sets EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_*.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "EyeBridge <noreply@eyebridge.invalid>")
# Where the links in those emails point.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# The email task's module (accounts has no tasks.py for autodiscovery to find).
CELERY_IMPORTS = ["accounts.notifications_tasks"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- recall (screening.recall) ---
# The patient is texted this many days before their rescreen is due (once per due date), and the
# health worker's "due and overdue" list shows them from then on.
RECALL_REMINDER_DAYS_BEFORE = env_int("RECALL_REMINDER_DAYS_BEFORE", 14)
if not 0 <= RECALL_REMINDER_DAYS_BEFORE <= 365:
    raise ImproperlyConfigured("RECALL_REMINDER_DAYS_BEFORE must be between 0 and 365")
# Hourly in the daytime (Asia/Seoul: CELERY_TIMEZONE), never at night; a missed hour only delays
# a reminder by one hour, a run that repeats one sends nothing.
CELERY_BEAT_SCHEDULE["screening-recall-reminders"] = {
    "task": "screening.tasks.recall_reminders_send",
    "schedule": crontab(minute=5, hour="9-19"),
}
# Retention (screening.consent): photo and heatmap files of screenings older than this many days
# are deleted every night; the results and decisions stay. 0 turns the nightly purge off. Ten
# years by default, the retention of medical records under Korea's Medical Service Act.
IMAGE_RETENTION_DAYS = env_int("IMAGE_RETENTION_DAYS", 3650)
CELERY_BEAT_SCHEDULE["screening-image-retention"] = {
    "task": "screening.tasks.images_purge",
    "schedule": crontab(minute=30, hour=2),
}

# --- referrals ---
# A hospital that leaves a sent referral unanswered this long is skipped: the referral is
# re-routed to the next ranked candidate (urgent cases wait much less).
REFERRAL_ESCALATE_AFTER_HOURS = env_int("REFERRAL_ESCALATE_AFTER_HOURS", 48)
REFERRAL_ESCALATE_URGENT_AFTER_HOURS = env_int("REFERRAL_ESCALATE_URGENT_AFTER_HOURS", 4)
REFERRAL_CANDIDATES = env_int("REFERRAL_CANDIDATES", 5)
# Tile URL template for the referral map (e.g. a self-hosted tile server). Empty: no tiles, the
# hospitals are drawn on a plain background (the portal serves no third-party assets).
REFERRAL_MAP_TILE_URL = env_str("REFERRAL_MAP_TILE_URL", "")
# One font file for the referral letter's Korean text; empty: the first of Nanum Gothic, Nanum
# Barun Gothic, Noto Sans CJK found on the machine (referrals/letter.py).
REFERRAL_LETTER_FONT = env_str("REFERRAL_LETTER_FONT", "")
CELERY_BEAT_SCHEDULE["referrals-escalate"] = {
    "task": "referrals.tasks.referrals_escalate",
    "schedule": 300.0,
}

# --- pharmacy ---
# How long an approved prescription's code can be used at a kiosk.
PHARMACY_PICKUP_WINDOW_HOURS = env_int("PHARMACY_PICKUP_WINDOW_HOURS", 72)
# Brute force: presentations per code, and unknown codes per kiosk per window.
PHARMACY_CODE_MAX_ATTEMPTS = env_int("PHARMACY_CODE_MAX_ATTEMPTS", 10)
PHARMACY_KIOSK_MAX_CODE_FAILURES = env_int("PHARMACY_KIOSK_MAX_CODE_FAILURES", 10)
PHARMACY_KIOSK_FAILURE_WINDOW_SECONDS = env_int("PHARMACY_KIOSK_FAILURE_WINDOW_SECONDS", 600)
# A reservation neither completed nor failed gives its stock back after this long.
PHARMACY_RESERVATION_TIMEOUT_SECONDS = env_int("PHARMACY_RESERVATION_TIMEOUT_SECONDS", 600)
PHARMACY_KIOSK_OFFLINE_MINUTES = env_int("PHARMACY_KIOSK_OFFLINE_MINUTES", 10)
PHARMACY_LOW_STOCK_THRESHOLD = env_int("PHARMACY_LOW_STOCK_THRESHOLD", 3)
PHARMACY_EXPIRY_WARNING_DAYS = env_int("PHARMACY_EXPIRY_WARNING_DAYS", 30)
CELERY_BEAT_SCHEDULE["pharmacy-release-stale-dispenses"] = {
    "task": "pharmacy.tasks.dispenses_release_stale",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["pharmacy-expire-prescriptions"] = {
    "task": "pharmacy.tasks.prescriptions_expire",
    "schedule": 300.0,
}
# Low stock, expiring lots and offline kiosks are checked on the beat (pharmacy.alerts), not only
# when the stock page is open; each condition alerts its pharmacists once until it is resolved.
CELERY_BEAT_SCHEDULE["pharmacy-alerts-check"] = {
    "task": "pharmacy.tasks.pharmacy_alerts_check",
    "schedule": 60.0,
}

# --- dashboard ---
# Recounts yesterday, today and the days changed since the last run into the dashboard's daily
# roll-up (dashboard.services): closed days on the dashboard lag the raw rows by at most this.
CELERY_BEAT_SCHEDULE["dashboard-rollup"] = {
    "task": "dashboard.tasks.dashboard_rollup_refresh",
    "schedule": 600.0,
}
# Field performance (dashboard.field_performance): a site whose AI agrees with the final human
# read on fewer than this share of its last FIELD_AGREEMENT_MIN_GRADED graded screenings is
# flagged on the dashboard (a new camera, a dirty lens, a population the model does not fit).
FIELD_AGREEMENT_MIN_GRADED = env_int("FIELD_AGREEMENT_MIN_GRADED", 20)
try:
    FIELD_AGREEMENT_ALERT_BELOW = float(env_str("FIELD_AGREEMENT_ALERT_BELOW", "0.8"))
except ValueError as _exc:
    raise ImproperlyConfigured("FIELD_AGREEMENT_ALERT_BELOW must be a number") from _exc
if not 0.0 <= FIELD_AGREEMENT_ALERT_BELOW <= 1.0:
    raise ImproperlyConfigured("FIELD_AGREEMENT_ALERT_BELOW must be between 0 and 1")
if FIELD_AGREEMENT_MIN_GRADED < 1:
    raise ImproperlyConfigured("FIELD_AGREEMENT_MIN_GRADED must be at least 1")
CELERY_BEAT_SCHEDULE["dashboard-field-agreement"] = {
    "task": "dashboard.tasks.field_agreement_alerts_check",
    "schedule": 900.0,
}

# --- System checks ---
# SQLite (the bare-machine `make run`) ignores covering-index columns; PostgreSQL uses them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- API schema ---
# Document every operation's error statuses with one accurate error body (config/schema.py).
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "config.schema.document_errors",
]

# --- grading ---
# Which finished screenings a grader reads (grading.selectors): every referable, urgent or
# ungradable one, and this share of those the AI called normal or medication. The sample is what
# makes the AI's specificity measurable; it is drawn by a hash of (seed, screening id), so the same
# seed always picks the same screenings.
try:
    GRADING_NORMAL_SAMPLE_RATE = float(env_str("GRADING_NORMAL_SAMPLE_RATE", "0.10"))
except ValueError as _exc:
    raise ImproperlyConfigured("GRADING_NORMAL_SAMPLE_RATE must be a number") from _exc
if not 0.0 <= GRADING_NORMAL_SAMPLE_RATE <= 1.0:
    raise ImproperlyConfigured("GRADING_NORMAL_SAMPLE_RATE must be between 0 and 1")
GRADING_SAMPLE_SEED = env_str("GRADING_SAMPLE_SEED", "eyebridge-grading")
# Turnaround targets: a case still unread this long after it was opened is overdue, and the
# beat escalates it once to its reading centres.
GRADING_TURNAROUND_HOURS = env_int("GRADING_TURNAROUND_HOURS", 48)
GRADING_URGENT_TURNAROUND_HOURS = env_int("GRADING_URGENT_TURNAROUND_HOURS", 4)
CELERY_BEAT_SCHEDULE["grading-escalate"] = {
    "task": "grading.tasks.grading_cases_escalate",
    "schedule": 300.0,
}
