"""gunicorn for the web process. Uploads run the quality gate in the request (< 50 ms per image),
so sync workers are enough; the model never runs in the web process."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Sync workers, cores + 1 of them: measured on the 2-core reference machine (docs/benchmarks.md,
# "Pharmacy dispense endpoint"), 3 sync workers served the kiosk flow at 110 req/s where 5 sync
# workers managed 92 and 3 gthread workers x 4 threads 79 (gthread keeps clients' keep-alive
# connections, so one process ends up with most of them and is capped by the GIL). Requests are
# short and CPU-bound (the model runs in Celery, not here), so more processes only add switching.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30
max_requests = 2000
max_requests_jitter = 200
# 15 MB photo uploads x 2 eyes, plus form fields.
limit_request_field_size = 16380
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
