"""Fault injection for the reliability tests: a Celery app whose inference crashes the worker
process outright (as a CUDA fault or an OOM kill would) after the screening has been claimed.

Started as `celery -A tests.support.crashing_worker worker ...`; production code is untouched."""

import os

import screening.inference
from config.celery import app  # noqa: F401 - the app celery -A loads


def _crash(*args, **kwargs):
    os._exit(1)


screening.inference.get_ensemble = _crash
