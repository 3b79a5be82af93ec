"""Why a run failed, as Baton keeps and shows it: the failed jobs of its pipeline.

The forge's answer (bots/engine/failures.py fetches it) is hostile text. It is stored bounded —
at most ``MAX_JOBS`` jobs, each field cut to ``MAX_TEXT`` characters, control characters and
line breaks made spaces, links kept only when they are http(s) — together with the attempt it
explains, so a retried run never shows the reasons of an earlier attempt. Every surface reads it
through ``shown`` and escapes on its way out (templates autoescape, the summary comment uses
bots/markdown.py, a commit status is plain text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chains.redaction import scrub
from chains.safe_url import safe_url
from chains.status import Status

MAX_JOBS = 10
MAX_TEXT = 120  # job, stage, step name and reason
MAX_URL = 1000
STATUS_LIMIT = 140  # GitHub refuses a longer commit status description; GitLab allows 255


class JobLike(Protocol):
    """What an adapter answers (bots/forges/base.py ``FailedJob``)."""

    @property
    def name(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def step(self) -> str: ...


@dataclass(frozen=True)
class Failure:
    """One failed job as the surfaces show it."""

    name: str
    stage: str
    reason: str
    url: str
    step: str

    @property
    def where(self) -> str:
        """The job, and its failed step when the forge named one: ``test / Run tests``."""
        return f"{self.name} / {self.step}" if self.step else self.name

    @property
    def label(self) -> str:
        """``test / Run tests (timed out)``."""
        return f"{self.where} ({self.reason_words})"

    @property
    def reason_words(self) -> str:
        """``script_failure`` → ``script failure``: the forge's word, readable."""
        return self.reason.replace("_", " ")

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "stage": self.stage,
            "reason": self.reason,
            "url": self.url,
            "step": self.step,
        }


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """Forge text on one line, without control characters, at most ``limit`` characters."""
    text = value if isinstance(value, str) else ""
    text = "".join(" " if (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def stored(jobs: list[JobLike], *, attempt: int, pipeline: str) -> dict[str, Any]:
    """What Run.failed_jobs keeps for the failed jobs a forge named."""
    kept = []
    for job in jobs[:MAX_JOBS]:
        url = getattr(job, "url", "")
        kept.append(
            {
                "name": clean(getattr(job, "name", "")) or "(unnamed job)",
                "stage": clean(getattr(job, "stage", "")),
                "reason": clean(getattr(job, "reason", "")) or "unknown",
                "url": safe_url(url) if isinstance(url, str) and len(url) <= MAX_URL else "",
                "step": clean(getattr(job, "step", "")),
            }
        )
    return {"attempt": attempt, "pipeline": clean(pipeline, 40), "jobs": kept}


def shown(run: Any) -> list[Failure]:
    """The failed jobs that explain the run's current attempt, when it failed; else none."""
    data = getattr(run, "failed_jobs", None)
    if run.status != Status.FAILED or not isinstance(data, dict):
        return []
    if data.get("attempt") != run.attempt or str(data.get("pipeline")) != str(run.remote_id):
        return []
    jobs = data.get("jobs")
    found = []
    for job in jobs[:MAX_JOBS] if isinstance(jobs, list) else []:
        if not isinstance(job, dict):
            continue
        found.append(
            Failure(
                name=clean(job.get("name")),
                stage=clean(job.get("stage")),
                reason=clean(job.get("reason")),
                url=safe_url(job.get("url")),
                step=clean(job.get("step")),
            )
        )
    return found


def describe(run: Any, limit: int = STATUS_LIMIT) -> str:
    """A commit status description that says why: ``failed: rspec (script failure), lint
    (stuck or timeout failure), +3 more``, at most ``limit`` characters ("" when none known)."""
    jobs = shown(run)
    if not jobs:
        return ""
    text = "failed: " + jobs[0].label
    if len(text) > limit:
        return text[: limit - 1] + "…"
    for n, job in enumerate(jobs[1:], start=1):
        rest = len(jobs) - n - 1
        more = f", +{rest} more" if rest else ""
        longer = f"{text}, {job.label}"
        if len(longer + more) > limit:
            return f"{text}, +{len(jobs) - n} more"[:limit]
        text = longer
    return text


def scrubbed(data: Any, names: set[str]) -> Any:
    """``Run.failed_jobs`` with the names of projects the reader may not know replaced in every
    job's words (a job may be named after another project of the chain)."""
    if not names or not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        return data
    jobs = [
        {k: scrub(v, names) if isinstance(v, str) and k != "url" else v for k, v in job.items()}
        if isinstance(job, dict)
        else job
        for job in data["jobs"]
    ]
    return {**data, "jobs": jobs}
