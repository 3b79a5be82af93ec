"""How long to wait before trying a forge call again: the one formula, for Celery's task retries
(bots/tasks.py) and for re-sending a run (bots/engine/triggering.py).

What the forge asked for (``Retry-After``, on a 429 or a 503) is honoured, up to ``MAX_WAIT``;
otherwise the wait doubles with each try, up to ``MAX_WAIT``, with ±20 % jitter so that
many workers that failed together do not come back together.
"""

from __future__ import annotations

import random

from bots.forges.base import ForgeError

# Countdowns stay well under the broker's visibility timeout.
MAX_WAIT = 600


def wait_for(exc: ForgeError | None, tries: int, *, jitter: bool = True) -> float:
    """Seconds to wait after ``tries`` failed tries (0 after the first), given the last error:
    the forge's Retry-After, else 1, 2, 4 … seconds up to MAX_WAIT, each within ±20 % when
    ``jitter`` (so that workers that failed together come back apart, never straight away)."""
    if exc is not None and exc.retry_after is not None:
        return float(min(MAX_WAIT, max(0.0, exc.retry_after)))
    base = min(float(MAX_WAIT), 2.0 ** min(max(0, tries), 10))
    return base * random.uniform(0.8, 1.2) if jitter else base
