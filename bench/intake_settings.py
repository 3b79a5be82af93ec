"""Settings for `bench/intake.py`: Baton's own, plus a bare view as the ceiling (bench only)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.intake_urls"
