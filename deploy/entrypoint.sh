#!/bin/sh
# Baton's container entry point: one image, the first argument says which process it becomes.
#   web      gunicorn on $PORT (default 8000), $WEB_CONCURRENCY workers (default 2)
#   worker   a Celery worker ($CELERY_POOL, default prefork; $CELERY_CONCURRENCY, default 4)
#   beat     the Celery scheduler (exactly one per installation)
#   migrate  apply database migrations (a one-off job before starting a new version)
#   check    Django's deployment checks (`check --deploy`), failing on warnings
#   manage   any other management command: `manage createsuperuser`
# Settings come from the environment (README "Configuration"); secrets may be files (NAME_FILE).
set -eu

cd "$(dirname "$0")/.."
role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
  web)
    # Metrics from every gunicorn worker (docs/operations.md): a fresh multiprocess directory.
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
      rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
    exec gunicorn config.wsgi:application \
      --config config/gunicorn_prometheus.py \
      --bind "${BATON_BIND:-0.0.0.0:${PORT:-8000}}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --threads "${GUNICORN_THREADS:-4}" \
      --timeout "${GUNICORN_TIMEOUT:-30}" \
      --graceful-timeout "${GUNICORN_GRACEFUL_TIMEOUT:-20}" \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --access-logfile - --error-logfile - \
      "$@"
    ;;
  worker)
    exec celery -A config worker \
      --pool "${CELERY_POOL:-prefork}" \
      --concurrency "${CELERY_CONCURRENCY:-4}" \
      --loglevel "${LOG_LEVEL:-INFO}" \
      "$@"
    ;;
  beat)
    exec celery -A config beat \
      --schedule "${BATON_BEAT_SCHEDULE:-/tmp/celerybeat-schedule}" \
      --loglevel "${LOG_LEVEL:-INFO}" \
      "$@"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  check)
    exec python manage.py check --deploy --fail-level WARNING "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "entrypoint: unknown command '$role' (use web, worker, beat, migrate, check or manage)" >&2
    exit 64
    ;;
esac
