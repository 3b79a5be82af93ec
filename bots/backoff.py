"""How long to wait before trying a forge call again: the one formula, for Celery's task retries
(bots/tasks.py) and for re-sending a run (bots/engine/triggering.py).

What the forge asked for (``Retry-After``, on a 429 or a 503) is honoured, up to ``MAX_WAIT``;
otherwise the wait doubles with each try, up to ``MAX_WAIT``, with full jitter (Celery's own
``retry_backoff`` formula) so that many workers that failed together do not come back together.
"""

from __future__ import annotations

from celery.utils.time import get_exponential_backoff_interval

from bots.forges.base import ForgeError

# Countdowns stay well under the broker's visibility timeout.
MAX_WAIT = 600


def wait_for(exc: ForgeError | None, tries: int, *, jitter: bool = True) -> float:
    """Seconds to wait after ``tries`` failed tries (0 after the first), given the last error."""
    if exc is not None and exc.retry_after is not None:
        return float(min(MAX_WAIT, max(0.0, exc.retry_after)))
    return float(
        get_exponential_backoff_interval(
            factor=1, retries=max(0, tries), maximum=MAX_WAIT, full_jitter=jitter
        )
    )
