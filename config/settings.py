"""Baton settings: one module, every knob from the environment (see README "Configuration")."""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config import signin
from config.env import env_bool, env_float, env_int, env_list, env_str
from config.preflight import without_password

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BATON_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded defaults keep their files here

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it (a long random string), or DEBUG=true for local work."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"  # noqa: S105
# Key material for secrets encrypted at rest (forge tokens, webhook secrets, masked variables).
SALT_KEY = env_list("BATON_ENCRYPTION_SALT", ["baton-fields-v1"])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
BATON_BASE_URL = env_str("BATON_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "django_filters",
    "dashboard.apps.ApiTokensConfig",  # django-rest-knox, titled "API tokens"
    "drf_spectacular",
    "axes",
    "csp",
    # Sign in with GitLab / GitHub (docs/sign-in.md); local accounts keep working.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.gitlab",
    "allauth.socialaccount.providers.github",
    "chains",
    "bots",
    "dashboard",
    "console",
    "notify",
    "sandbox",
]
# `manage.py demo` (what `make run` starts): the one place where Baton's apps and the sandbox forge
# meet, so it is installed for local work only, never in production.
if DEBUG:
    INSTALLED_APPS.append("demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from gunicorn (the image runs no separate file server; deploy/).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "bots.logcontext.LogContextMiddleware",  # each request starts with no log ids
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.RejectNulMiddleware",  # ?ref=%00 is a 400, not a database error
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.CSPMiddleware",  # django-csp's, for documents only
    # Last, as django-axes asks: it answers a locked-out sign-in with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, object]:
    default_url = f"sqlite:///{VAR_DIR / 'baton.sqlite3'}"
    url = env_str("DATABASE_URL", default_url)
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    except Exception as exc:  # dj-database-url raises several kinds
        shown = without_password(url)  # the message is printed; the password is not
        raise ImproperlyConfigured(f"DATABASE_URL={shown!r} cannot be used: {exc}") from exc
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock upgrades.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        config["CONN_MAX_AGE"] = 0
    return {"default": config}


DATABASES = _database()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a sign-in while its username and address are locked out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Signs in the user a forge account belongs to after the OAuth flow (allauth).
    "allauth.account.auth_backends.AuthenticationBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# Times to the second with their timezone in the admin console (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

# --- Web hardening (docs/security.md, "Web hardening") -----------------------------------------
# Behind HTTPS (the default unless DEBUG): cookies only over HTTPS, HSTS, http → https redirects.
# `make run` and the browser tests (DEBUG=true, plain http) keep all of these off.
BATON_HTTPS = env_bool("BATON_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = BATON_HTTPS
CSRF_COOKIE_SECURE = BATON_HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("BATON_SSL_REDIRECT", BATON_HTTPS)
# Probes (kubelet, load balancers) and Prometheus ask over plain http inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("BATON_HSTS_SECONDS", 31_536_000 if BATON_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("BATON_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("BATON_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS: list[str] = []
if not SECURE_HSTS_PRELOAD:
    # Joining the browsers' preload list is a decision for whoever owns the domain
    # (BATON_HSTS_PRELOAD=true), not a default.
    SILENCED_SYSTEM_CHECKS.append("security.W021")


def _proxy_ssl_header() -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` or ``X-Forwarded-Proto: https``: the header a TLS-terminating proxy
    sets (and strips from what clients send), as Django's SECURE_PROXY_SSL_HEADER."""
    raw = env_str("BATON_PROXY_SSL_HEADER", "").strip()
    if not raw:
        return None
    name, _, value = raw.partition(":")
    name, value = name.strip(), value.strip() or "https"
    if not name or not all(c.isalnum() or c == "-" for c in name):
        raise ImproperlyConfigured(
            f"BATON_PROXY_SSL_HEADER={raw!r}: give a header name, e.g. X-Forwarded-Proto"
        )
    return "HTTP_" + name.upper().replace("-", "_"), value


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

# Content-Security-Policy (django-csp): scripts and styles only from Baton's own static files;
# no inline script, style or event handler anywhere (the dashboard, the admin, /api/docs/).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# Sign-in rate limiting (django-axes), for the dashboard's sign-in and /admin/: after this many
# failed attempts for one username from one address, that pair is refused (429) for the cool-off,
# even with the right password. `python manage.py axes_reset` lifts every lock-out.
AXES_FAILURE_LIMIT = env_int("BATON_LOGIN_FAILURE_LIMIT", 5, minimum=1)
BATON_LOGIN_COOLOFF = env_float("BATON_LOGIN_COOLOFF", 15.0, minimum=0.1)  # minutes
AXES_COOLOFF_TIME = timedelta(minutes=BATON_LOGIN_COOLOFF)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# --- Sign in with GitLab / GitHub (django-allauth; docs/sign-in.md) -----------------------------
SOCIALACCOUNT_PROVIDERS = signin.providers()
BATON_SIGNIN_FORGES = signin.forge_slugs()
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] += signin.origins(SOCIALACCOUNT_PROVIDERS)
SOCIALACCOUNT_ADAPTER = "dashboard.signin.SocialAccountAdapter"
SOCIALACCOUNT_STORE_TOKENS = False  # forge tokens are used once at sign-in, never kept
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # the flow starts with a POST (CSRF-checked), never a link
# A forge account that matches no Baton user gets a new one (with no grants of its own);
# false: only people an admin created (or linked) may sign in with a forge.
BATON_SIGNIN_SIGNUP = env_bool("BATON_SIGNIN_SIGNUP", True)
# Group / team memberships read at sign-in count for grants this long (seconds); signing in
# again reads them anew.
BATON_SIGNIN_GROUPS_MAX_AGE = env_float("BATON_SIGNIN_GROUPS_MAX_AGE", 8 * 3600.0, minimum=0.0)
# GitLab groups count from this access level up (10 guest, 20 reporter, 30 developer, ...).
BATON_SIGNIN_GITLAB_MIN_ACCESS_LEVEL = env_int("BATON_SIGNIN_GITLAB_MIN_ACCESS_LEVEL", 10)
ACCOUNT_EMAIL_VERIFICATION = "none"  # the forge's verified e-mail is taken as it is
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_LOGOUT_REDIRECT_URL = "/login/"

# OpenAPI schema and docs page: only for signed-in people unless this says otherwise.
BATON_API_DOCS_REQUIRE_LOGIN = env_bool("BATON_API_DOCS_REQUIRE_LOGIN", not DEBUG)

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"  # `collectstatic` fills it (the image does at build time)
with contextlib.suppress(OSError):  # whitenoise warns at every start when it does not exist
    STATIC_ROOT.mkdir(exist_ok=True)

# --- Cache --------------------------------------------------------------------------------------
# Short-lived answers Baton remembers (forge lookups, a project's .baton.yml, a workflow's inputs).
# Local memory per process unless CACHE_URL names a Redis (redis:// or rediss://), which all
# processes then share. The "local" cache is always per process: it holds forges with their
# webhook secrets decrypted, which never leave the process.
CACHE_URL = env_str("CACHE_URL", "locmem://")
_CACHE_SCHEME = CACHE_URL.split("://", 1)[0]
if _CACHE_SCHEME in {"redis", "rediss"}:
    _DEFAULT_CACHE: dict[str, object] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
    }
elif _CACHE_SCHEME == "locmem":
    _DEFAULT_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
else:
    raise ImproperlyConfigured(
        f"CACHE_URL={without_password(CACHE_URL)!r}: use locmem:// or redis://host:port/db"
    )
CACHES = {
    "default": {**_DEFAULT_CACHE, "KEY_PREFIX": "baton"},
    "local": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "baton-local",
    },
}

# --- Celery -------------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.split("://", 1)[0] not in {"filesystem", "redis", "rediss", "amqp", "memory"}:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={without_password(CELERY_BROKER_URL)!r}: "
        "use redis://, amqp:// or filesystem://"
    )
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # one Redis client per channel
if CELERY_BROKER_URL.startswith("filesystem://"):
    _BROKER_DIR.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_BROKER_DIR),
        data_folder_out=str(_BROKER_DIR),
        processed_folder=str(VAR_DIR / "broker-processed"),
        store_processed=False,
        control_folder=str(VAR_DIR / "broker-control"),
    )
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "baton"
# Pipeline news has a queue of its own: a fan-out's pipelines each report three or four times, and
# a worker reads its queues in turn, so a new change, a comment or a send never waits behind
# thousands of pipeline hooks (bots/kicks.py ``deliver``). A worker started without ``-Q`` reads
# both; one started with ``-Q`` must name both.
BATON_TRACKING_QUEUE = "baton.tracking"
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(BATON_TRACKING_QUEUE)]

# --- Baton engine -------------------------------------------------------------------------------
# A delivery or run untouched this long is picked up again by the sweeper (lost enqueue,
# dead worker).
BATON_SWEEP_INTERVAL = env_float("BATON_SWEEP_INTERVAL", 5.0, minimum=0.5)
BATON_STALE_AFTER = env_float("BATON_STALE_AFTER", 30.0, minimum=1.0)
# How long a worker holds its claim on a run while it talks to the forge.
BATON_TRIGGER_LEASE = env_float("BATON_TRIGGER_LEASE", 60.0, minimum=1.0)
# Runs with no pipeline event for this long are polled.
BATON_POLL_AFTER = env_float("BATON_POLL_AFTER", 60.0, minimum=1.0)
# ...and runs whose webhooks do arrive, only after this long without any.
BATON_POLL_AFTER_HOOKED = env_float("BATON_POLL_AFTER_HOOKED", 900.0, minimum=1.0)
# ...but a run heard to start is checked once at its start plus the longest of its target's recent
# runs plus this many seconds, and polled if it has not ended (bots/engine/overdue.py).
BATON_OVERDUE_GRACE = env_float("BATON_OVERDUE_GRACE", 1.0, minimum=0.0)
# A forge with open runs and no webhook delivery for this long is "silent" (a disabled hook):
# all its open runs are polled at BATON_POLL_AFTER, and the console says so.
BATON_HOOK_SILENCE = env_float("BATON_HOOK_SILENCE", 60.0, minimum=1.0)
# A pipeline is taken for a run only if the forge created it after the run was sent, give or take
# this many seconds of clock difference between Baton and the forge.
BATON_MARKER_CLOCK_SKEW = env_float("BATON_MARKER_CLOCK_SKEW", 60.0, minimum=0.0)
BATON_FORGE_TIMEOUT = env_float("BATON_FORGE_TIMEOUT", 10.0, minimum=0.1)
# Forge calls one worker process keeps in flight side by side (a fan-out's creates, a mirror's
# statuses; bots/engine/sending.py), and the connections its GitLab client keeps per host. A
# fan-out of N targets takes about N / this many forge round trips.
BATON_SEND_CONCURRENCY = env_int("BATON_SEND_CONCURRENCY", 64, minimum=1)
if BATON_TRIGGER_LEASE <= BATON_FORGE_TIMEOUT:
    # A worker renews its claim just before it sends; the send must end before the claim does,
    # or another worker may take the run over while the first send is still on its way.
    raise ImproperlyConfigured(
        f"BATON_TRIGGER_LEASE={BATON_TRIGGER_LEASE:g} must be longer than "
        f"BATON_FORGE_TIMEOUT={BATON_FORGE_TIMEOUT:g} (one send must fit in one claim)"
    )
# A send whose answer was lost is looked for before it is sent again; a forge that creates the
# run after answering (GitHub's repository_dispatch) may list it only later, so an empty look-up
# is believed only this long after the send.
BATON_LOOKUP_GRACE = env_float("BATON_LOOKUP_GRACE", 30.0, minimum=0.0)
BATON_MAX_FORGE_RETRIES = env_int("BATON_MAX_FORGE_RETRIES", 12, minimum=0)
# Notifications (docs/notifications.md): tries per message, and how long a "chain failed"
# message waits for the failed jobs' reasons.
BATON_NOTIFY_RETRIES = env_int("BATON_NOTIFY_RETRIES", 6, minimum=0)
BATON_NOTIFY_REASON_WAIT = env_int("BATON_NOTIFY_REASON_WAIT", 20, minimum=0)
# GitHub App forges: renew an installation token this many seconds before it expires (at the
# latest in the last twelfth of its lifetime).
BATON_GITHUB_APP_RENEW_BEFORE = env_float("BATON_GITHUB_APP_RENEW_BEFORE", 300.0, minimum=0.0)
BATON_CONFIG_PATH = env_str("BATON_CONFIG_PATH", ".baton.yml")
# Nested chains: how deep and how big one chain may grow.
BATON_MAX_DEPTH = env_int("BATON_MAX_DEPTH", 5, minimum=1)
BATON_MAX_RUNS = env_int("BATON_MAX_RUNS", 1000, minimum=1)
# How long a triggered project's own .baton.yml is remembered (seconds; 0: read it every time).
BATON_DOWNSTREAM_CONFIG_TTL = env_float("BATON_DOWNSTREAM_CONFIG_TTL", 60.0)
# How stale the repository page's view of a project's .baton.yml may be (seconds; 0: read it
# every time the page is opened).
BATON_REPOSITORY_CONFIG_TTL = env_float("BATON_REPOSITORY_CONFIG_TTL", 60.0, minimum=0.0)
# The same change, commit and action delivered again within this many seconds (another hook,
# a replay under a new key) starts no second chain; 0 turns the check off.
BATON_REPEAT_WINDOW = env_float("BATON_REPEAT_WINDOW", 600.0, minimum=0.0)
# The ETA of a running chain: how many of each target's last successful runs it looks at.
BATON_ETA_HISTORY = env_int("BATON_ETA_HISTORY", 20, minimum=1)

# --- Bounded cost (docs/security.md, "Patterns and time limits") --------------------------------
# Glob patterns (`branches:`, `=~`, `changes()`) are matched in linear time; these cap their size.
BATON_MAX_PATTERN_LENGTH = env_int("BATON_MAX_PATTERN_LENGTH", 256, minimum=1)
BATON_MAX_PATTERNS = env_int("BATON_MAX_PATTERNS", 100, minimum=1)
# Every Celery task: a soft limit (the task stops with a clear reason) and a hard one (the worker
# process is replaced). Per-task overrides are in bots/tasks.py.
BATON_TASK_SOFT_TIME_LIMIT = env_int("BATON_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
BATON_TASK_TIME_LIMIT = env_int("BATON_TASK_TIME_LIMIT", 150, minimum=2)
CELERY_TASK_SOFT_TIME_LIMIT = BATON_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = max(BATON_TASK_TIME_LIMIT, BATON_TASK_SOFT_TIME_LIMIT + 1)
# A delivery tried this many times without finishing (time limits, dead workers, forge errors)
# is parked as failed with the reason shown in the admin; a run likewise after this many sends.
BATON_MAX_DELIVERY_ATTEMPTS = env_int(
    "BATON_MAX_DELIVERY_ATTEMPTS", BATON_MAX_FORGE_RETRIES + 3, minimum=1
)
BATON_MAX_RUN_ATTEMPTS = env_int("BATON_MAX_RUN_ATTEMPTS", 50, minimum=1)
# The dashboard plan page's dry run gives up after this many seconds, with a message.
BATON_PLAN_TIME_LIMIT = env_float("BATON_PLAN_TIME_LIMIT", 5.0, minimum=0.1)

# --- Input limits (docs/security.md, "Bounded input") ---------------------------------------------
# Webhook bodies above this many bytes are answered 413 before anything reads them (GitHub caps
# its payloads at 25 MB).
BATON_MAX_WEBHOOK_BYTES = env_int("BATON_MAX_WEBHOOK_BYTES", 25 * 1024 * 1024, minimum=1024)
# How deeply JSON (webhook bodies) may nest.
BATON_MAX_JSON_DEPTH = env_int("BATON_MAX_JSON_DEPTH", 64, minimum=8)
# `.baton.yml`, admin rules and params files: size, YAML nesting, values after alias expansion.
BATON_MAX_CONFIG_BYTES = env_int("BATON_MAX_CONFIG_BYTES", 256 * 1024, minimum=1024)
BATON_MAX_CONFIG_DEPTH = env_int("BATON_MAX_CONFIG_DEPTH", 20, minimum=4)
BATON_MAX_CONFIG_NODES = env_int("BATON_MAX_CONFIG_NODES", 100_000, minimum=100)
BATON_MAX_TARGETS = env_int("BATON_MAX_TARGETS", 1000, minimum=1)
BATON_MAX_VARIABLES = env_int("BATON_MAX_VARIABLES", 200, minimum=1)
# `/baton` commands carried out per comment, and the size of Baton's replies (characters).
BATON_MAX_COMMANDS = env_int("BATON_MAX_COMMANDS", 5, minimum=1)
BATON_MAX_REPLY_CHARS = env_int("BATON_MAX_REPLY_CHARS", 60_000, minimum=1000)

# --- Logs (docs/operations.md, "Logs") ----------------------------------------------------------
# plain: readable lines (the default, for `make run`); json: one JSON object a line for a log
# stack. Either way every line of a delivery's, chain's or run's work carries its ids.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "bots.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {
            "()": "bots.logcontext.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["ids"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- Metrics (docs/operations.md, "Metrics") ----------------------------------------------------
# /metrics answers a request bearing this token (Authorization: Bearer …) from anywhere …
BATON_METRICS_TOKEN = env_str("BATON_METRICS_TOKEN", "")
# … and, without it, requests from these addresses or networks (by default the machine itself
# when DEBUG, nobody otherwise). No token and nobody allowed: /metrics is off (404).


def _networks(name: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an address or network (e.g. 10.0.0.0/8)"
            ) from None
    return networks


BATON_METRICS_ALLOW = _networks("BATON_METRICS_ALLOW", ["127.0.0.1", "::1"] if DEBUG else [])
# A Celery worker may serve its own metrics (another container or machine than the web).
BATON_WORKER_METRICS_PORT = env_int("BATON_WORKER_METRICS_PORT", 0)
BATON_WORKER_METRICS_ADDR = env_str("BATON_WORKER_METRICS_ADDR", "127.0.0.1")

# --- Data over time (docs/operations.md, "Pruning") -------------------------------------------
# Every BATON_PRUNE_INTERVAL seconds, in batches of BATON_PRUNE_BATCH rows: deliveries older
# than BATON_KEEP_DELIVERIES_DAYS are deleted, chains finished longer than BATON_KEEP_CHAINS_DAYS
# ago are deleted with their runs (variables, attempts), and audit entries older than
# BATON_KEEP_AUDIT_DAYS are deleted (bots/pruning.py). 0 keeps that kind for ever.
BATON_KEEP_DELIVERIES_DAYS = env_float("BATON_KEEP_DELIVERIES_DAYS", 30.0)
BATON_KEEP_CHAINS_DAYS = env_float("BATON_KEEP_CHAINS_DAYS", 90.0)
BATON_KEEP_AUDIT_DAYS = env_float("BATON_KEEP_AUDIT_DAYS", 365.0)
BATON_PRUNE_BATCH = env_int("BATON_PRUNE_BATCH", 1000, minimum=1)
BATON_PRUNE_INTERVAL = env_float("BATON_PRUNE_INTERVAL", 3600.0, minimum=60.0)

CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "bots.tasks.sweep", "schedule": BATON_SWEEP_INTERVAL},
    "prune": {"task": "bots.pruning.prune", "schedule": BATON_PRUNE_INTERVAL},
    # docs/notifications.md
    "notify-sweep": {"task": "notify.tasks.sweep_notifications", "schedule": 60.0},
}
CELERY_IMPORTS = ("bots.pruning",)  # tasks outside bots/tasks.py

# --- REST API (/api/v1/, docs/api.md) ------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`, not 403.
    # django-rest-knox: tokens stored hashed, with an expiry (BATON_API_TOKEN_TTL).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# API tokens (docs/api.md): valid this many days after they are made (0: until revoked).
BATON_API_TOKEN_TTL = env_float("BATON_API_TOKEN_TTL", 90.0)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=BATON_API_TOKEN_TTL) if BATON_API_TOKEN_TTL else None,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton API",
    "DESCRIPTION": "Chains of downstream pipelines, their runs, and the actions on them. "
    "See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "dashboard.api.schema.path_ids_are_whole_numbers",
    ],
}
