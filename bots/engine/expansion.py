"""Whether a triggered project's own `.baton.yml` may set off more runs (nested chains).

``planning.expand_run`` reads the file after each run is sent. When that read found nothing an
upstream triggers (no file, or no target `on: [upstream]`), it is noted here for as long as the
file itself is remembered (``BATON_DOWNSTREAM_CONFIG_TTL``): the next runs sent to that project
and ref within that time ask for no expansion task, whose answer is known (a fan-out of 1,000
into such projects spared 1,000 tasks). A file that could not be read or is invalid is not
noted: its runs are expanded, and show why, as before.
"""

from __future__ import annotations

from django.conf import settings

from bots import caching


def _key(repository_id: int, ref: str) -> str:
    return caching.key("triggers-nothing", repository_id, ref)


def nothing_in(repository_id: int, ref: str) -> None:
    """The project's `.baton.yml` at ``ref`` was read and triggers nothing from upstream."""
    caching.remember(_key(repository_id, ref), True, settings.BATON_DOWNSTREAM_CONFIG_TTL)


def may_trigger(repository_id: int, ref: str) -> bool:
    """False when the file was read within the TTL and triggers nothing from upstream."""
    return caching.recall(_key(repository_id, ref), False) is not True
