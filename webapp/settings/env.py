"""Every value read from the environment is read here, once."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"
# Written by the embedded Postgres launcher (webapp/launcher.py) when it starts a cluster.
EMBEDDED_DATABASE_URL_FILE = VAR_DIR / "postgres" / "database_url"

env = environ.Env()


def database_url() -> str:
    """DATABASE_URL, else the private cluster that bin/run or bin/test started."""
    url: str = env.str("DATABASE_URL", default="")
    if url:
        return url
    if EMBEDDED_DATABASE_URL_FILE.exists():
        return EMBEDDED_DATABASE_URL_FILE.read_text().strip()
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "No database: set DATABASE_URL, or start the embedded Postgres with "
        "`bin/run` (or `python -m webapp.launcher pg-start`)."
    )
