"""Tests: the local settings with a fast password hasher."""

from webapp.settings.local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
RATE_LIMIT_EVENTS_PER_MINUTE = 120
# Nothing is queued after a training in tests (a test that wants it sets the name).
ML_AFTER_TRAINING_TASK = ""
