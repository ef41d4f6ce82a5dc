"""Django REST framework, drf-spectacular and rate limits."""

from webapp.settings.env import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 24,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"

SPECTACULAR_SETTINGS = {
    "TITLE": "Personalization platform API",
    "DESCRIPTION": "Catalog, events, privacy and recommendations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    },
}

# Fixed-window limits, counted in Postgres so every process shares them.
RATE_LIMIT_EVENTS_PER_MINUTE: int = env.int("RATE_LIMIT_EVENTS_PER_MINUTE", default=120)
RATE_LIMIT_API_KEY_PER_MINUTE: int = env.int("RATE_LIMIT_API_KEY_PER_MINUTE", default=6000)
EVENT_BATCH_MAX: int = 500
