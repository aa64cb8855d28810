"""Settings for the review app. Every knob comes from the environment, with a
default that works on a fresh checkout (SQLite, local services).

DEBUG is off unless DJANGO_DEBUG says otherwise, so a deployment that forgets it is safe;
the development entry points (`manage.py dev`, the test settings, the chaos harness)
turn it on themselves."""

import os
from pathlib import Path

import dj_database_url

from reviewapp.lib.env import envbool, envfloat, envint, envlist, envstr
from reviewapp.lib.pools import pools_from_env, rq_queues

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DJANGO_DEBUG", False)
SECRET_KEY = envstr("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "reviewapp.accounts",
    "reviewapp.audit",
    "reviewapp.catalog",
    "reviewapp.briefs",
    "reviewapp.review",
    "reviewapp.campaigns",
    "reviewapp.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "reviewapp.audit.middleware.RequestContextMiddleware",
    # After the two above: signal handlers find the acting user through the request context.
    "reviewapp.audit.actor.ActorContextMiddleware",
    "reviewapp.accounts.middleware.DeniedAccessAuditMiddleware",
    "reviewapp.lib.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"

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
                "reviewapp.accounts.context_processors.roles",
            ],
        },
    },
]

# SQLite by default; PostgreSQL (or anything dj-database-url knows) when DATABASE_URL is set.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the workers write at the same time: WAL lets readers go on,
    # IMMEDIATE takes the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": envint("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The one backend: Django's, behind the sign-in throttle (both login pages go through it).
AUTHENTICATION_BACKENDS = ["reviewapp.accounts.backends.ThrottledModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Media (input images, outputs, their copies and thumbnails) in an S3-compatible bucket when
# S3_BUCKET is set, through django-storages; else local files under MEDIA_ROOT. Credentials
# are S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY, or boto3's usual chain (AWS_* variables, an
# instance role) when those are unset. Files are always served through the app's own
# permission checks, never from the bucket directly.
S3_BUCKET = envstr("S3_BUCKET", "")
if S3_BUCKET:
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": envstr("S3_ENDPOINT_URL", "") or None,
                "region_name": envstr("S3_REGION", "") or None,
                "access_key": envstr("S3_ACCESS_KEY_ID", "") or None,
                "secret_key": envstr("S3_SECRET_ACCESS_KEY", "") or None,
                "location": envstr("S3_PREFIX", ""),
                "addressing_style": envstr("S3_ADDRESSING_STYLE", "") or None,
                "signature_version": "s3v4",
                # Names are content hashes already; never overwrite, never make public.
                "file_overwrite": False,
                "default_acl": None,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

# Redis: REDIS_URL when set. `make run` and `make test` start a private embedded
# Redis and set it for their children when it is not.
REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")

# ComfyUI backends, in pools: COMFYUI_POOLS="sdxl=http://gpu1:8188,http://gpu2:8188;cpu=..."
# (a name and its backends' base URLs; the first pool is the default), else one pool
# "default" of COMFYUI_URL (one or more base URLs, comma separated). reviewapp.lib.pools
# reads this; every pool has the RQ queue of its name.
COMFYUI_POOLS = pools_from_env(os.environ)
# Every backend of every pool, for code that does not route by pool.
COMFYUI_URLS = [url for urls in COMFYUI_POOLS.values() for url in urls]

RQ_QUEUES = rq_queues(COMFYUI_POOLS, REDIS_URL, envint("RQ_DEFAULT_TIMEOUT", 900))
RQ_SHOW_ADMIN_LINK = False
# Services enqueue on commit themselves (transaction.on_commit); an enqueue call then
# means "now", and its result (the job) is what the caller gets back.
RQ = {"COMMIT_MODE": "auto"}

COMFYUI_TIMEOUT = envfloat("COMFYUI_TIMEOUT", 30.0)
# Optional: an API-format workflow every backend must have run since it started before it
# takes work (loads the models once, ahead of the first brief).
COMFYUI_WARMUP_WORKFLOW = envstr("COMFYUI_WARMUP_WORKFLOW", "")
# Prompts a worker keeps pending on a backend, beyond the one running, while it follows its
# own run and ingests: the backend never waits for us. 0 turns submitting ahead off.
WORKER_SUBMIT_AHEAD = envint("WORKER_SUBMIT_AHEAD", 1)
# Model affinity: prefer a backend whose last prompt used the workflow's checkpoint (a
# switch costs seconds on a GPU). Off: the shortest queue, whatever it has loaded.
COMFYUI_AFFINITY = envbool("COMFYUI_AFFINITY", True)
# How many prompts longer a backend's queue may be than the shortest and still be chosen
# because it has the workflow's checkpoint loaded already (a switch costs seconds on a GPU).
COMFYUI_AFFINITY_SLACK = envint("COMFYUI_AFFINITY_SLACK", 1)
# Prefix of the Redis keys where pools share what they know of their backends.
POOL_STATE_PREFIX = envstr("POOL_STATE_PREFIX", "")
# How long one run may take on the backend before the job gives up on it.
GENERATION_RUN_TIMEOUT = envfloat("GENERATION_RUN_TIMEOUT", 600.0)

WORKFLOWS_DIR = BASE_DIR / "workflows"
PARAMS_DIR = BASE_DIR / "params"

# Crash safety. Attempts a generation gets when failures are temporary; how often a
# running job touches its row; how old that touch may be before the reconciler
# presumes the worker dead; how long after a row changes the reconciler leaves it be
# (its enqueue may still be on the way).
GENERATION_MAX_ATTEMPTS = envint("GENERATION_MAX_ATTEMPTS", 5)
HEARTBEAT_INTERVAL_S = envfloat("HEARTBEAT_INTERVAL_S", 5.0)
WORKER_STALE_S = envfloat("WORKER_STALE_S", 20.0)
RECONCILE_GRACE_S = envfloat("RECONCILE_GRACE_S", 10.0)

# Largest output image the worker accepts from a backend, in bytes.
ASSET_MAX_BYTES = envint("ASSET_MAX_BYTES", 64 * 1024 * 1024)
THUMBNAIL_SIZE = envint("THUMBNAIL_SIZE", 320)
# Largest input image an operator may upload with a brief.
UPLOAD_MAX_BYTES = envint("UPLOAD_MAX_BYTES", 20 * 1024 * 1024)
# Most pixels (width x height) an uploaded image or a backend's output may have. Checked
# from the header before decoding: a few KB of PNG can announce gigabytes of pixels.
# The default is 8192 x 8192.
IMAGE_MAX_PIXELS = envint("IMAGE_MAX_PIXELS", 64 * 1024 * 1024)

# A reviewer may not decide on a generation from their own brief, unless this is on
# (for one-person teams).
ALLOW_SELF_REVIEW = envbool("ALLOW_SELF_REVIEW", False)

# How long a reviewer may undo their last decision. Whatever acts on a decision outside
# the app (webhooks, exports) waits until this has passed (Generation.objects.settled()).
DECISION_UNDO_S = envint("DECISION_UNDO_S", 10)
# How long opening an image for review holds it for that reviewer (renewed while the
# page stays open, released on a decision or when the page is left). Others' "next"
# skips it, and their decisions on it are refused.
REVIEW_CLAIM_S = envint("REVIEW_CLAIM_S", 120)

# Campaigns. The most cells one campaign may have; how many released campaign cells may
# wait in a pool's queue at once (the scheduler tops it up, campaigns taking turns, so a
# single brief never waits behind more than this); how often the scheduler looks.
CAMPAIGN_MAX_CELLS = envint("CAMPAIGN_MAX_CELLS", 5000)
CAMPAIGN_RELEASE_WINDOW = envint("CAMPAIGN_RELEASE_WINDOW", 16)
CAMPAIGN_SCHEDULER_EVERY_S = envfloat("CAMPAIGN_SCHEDULER_EVERY_S", 0.5)

# The audit trail's MAC key: a secret kept outside the database (unlike SECRET_KEY's
# uses, losing it to a database reader is what it guards against), so a person with
# database access cannot rewrite the trail. Keep it: rows sealed with one key verify
# only with that key. Required when DEBUG is off.
AUDIT_KEY = envstr("AUDIT_KEY", "")
if not AUDIT_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("AUDIT_KEY must be set when DJANGO_DEBUG is off")
    AUDIT_KEY = "dev-only-audit-key-do-not-use-in-production"

# The reasons a reviewer picks from when rejecting (free text may be added).
REJECT_REASON_TAGS = envlist(
    "REJECT_REASON_TAGS",
    "Off-brand,Visual artifacts,Wrong product,Text or logo errors,Composition,Not safe to publish",
)

# Sign-in throttle (Redis): failed sign-ins allowed per (account, client address) and per
# client address within the window; past either limit, sign-ins from there are refused
# for a whole window without checking the password.
LOGIN_FAILURES_PER_ACCOUNT = envint("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 50)
LOGIN_FAILURE_WINDOW_S = envint("LOGIN_FAILURE_WINDOW_S", 15 * 60)
# Refused requests (403) each get an audit row, up to this many per user (or address) per
# window; the one past the limit says so, and later ones in that window are not recorded.
DENIAL_AUDIT_LIMIT = envint("DENIAL_AUDIT_LIMIT", 20)
DENIAL_AUDIT_WINDOW_S = envint("DENIAL_AUDIT_WINDOW_S", 15 * 60)
# Namespace of the throttles' Redis keys (several deployments may share one Redis).
THROTTLE_KEY_PREFIX = envstr("THROTTLE_KEY_PREFIX", "reviewapp:throttle:")

# Behind a load balancer or reverse proxy that terminates TLS: trust its
# X-Forwarded-Proto for "is this HTTPS" and the last X-Forwarded-For entry (the address
# it saw) as the client's. Only when it is there: otherwise any client could claim both.
BEHIND_PROXY = envbool("DJANGO_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Pages load scripts, styles and images from this site only: no inline script or style.
CONTENT_SECURITY_POLICY = envstr(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # Preloading binds the whole domain to HTTPS for months: the domain owner opts in.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "reviewapp": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
        "comfybridge": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    },
}
