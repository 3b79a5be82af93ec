"""What the API shows. Read-only: changes go through the actions (views), never through writes.

Confidentiality: a run inside a chain the user may view, whose own repository the user may not
view, is shown as a ``"private project"``: everything that names or points into that project
(path, repository, ref, workflow, key, label, variables, web URLs, errors) is null. Masked
variables never show their values: their names map to ``"••••"``, and only where the user may
view the run's repository.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chains import eta, failures, quarantine, retrying
from chains.models import Chain, Repository, Run, RunAttempt
from chains.redaction import MASK, scrub
from chains.redaction import PRIVATE as PRIVATE_WORDS
from chains.redaction import PRIVATE_NAME as PRIVATE
from chains.runstate import soft_failed
from chains.safe_url import safe_url
from chains.status import Status
from dashboard.api.permissions import Access

# Run fields that name or point into the run's project; null when that project is private.
PRIVATE_RUN_FIELDS = (
    "retried_for",
    "quarantine_reason",
    "repository",
    "forge",
    "key",
    "label",
    "ref",
    "workflow",
    "variables",
    "masked_variables",
    "undelivered",
    "depends_on",
    "deploy_environment",
    "remote_id",
    "web_url",
    "error",
    "failed_jobs",
)
PRIVATE_ATTEMPT_FIELDS = ("remote_id", "web_url", "error")


def _access(serializer: serializers.BaseSerializer[Any]) -> Access:
    return serializer.context["access"]  # type: ignore[no-any-return]


def _hidden_names(serializer: serializers.BaseSerializer[Any], chain_id: int) -> set[str]:
    """Paths, keys and labels of the runs of chain ``chain_id`` in projects the user may not
    view (as the chain page scrubs them): one query per chain, asked only when there is text
    to scrub."""
    seen = _access(serializer)
    if seen.everything:
        return set()
    cache: dict[int, set[str]] = serializer.context.setdefault("_hidden_names", {})
    if chain_id not in cache:
        rows = (
            Run.objects.filter(chain_id=chain_id)
            .exclude(repository_id__in=sorted(seen.visible))
            .values_list("key", "label", "repository__path")
        )
        cache[chain_id] = {name for row in rows for name in row if name}
    return cache[chain_id]


class OptionalURLField(serializers.URLField):
    """An http(s) URL, or null where the model keeps a blank one (not yet known, or none) or
    one that is not http(s)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:
        return safe_url(value) or None  # `javascript:` and other non-http(s) URLs: null


class ErrorSerializer(serializers.Serializer[Any]):
    """Every refusal: 401, 403 (with the policy's reason), 404, 409 (why the action was refused)."""

    detail = serializers.CharField()


class RepositorySerializer(serializers.ModelSerializer[Repository]):
    forge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    forge_kind = serializers.CharField(source="forge.kind", read_only=True)
    web_url = OptionalURLField()
    flaky_runs = serializers.SerializerMethodField(
        help_text="Runs of this project that failed and then passed on a retry of the same "
        "commit (flakiness)"
    )
    quarantine = serializers.SerializerMethodField(
        help_text="The quarantine in force: {reason, expires_at}, or null"
    )

    class Meta:
        model = Repository
        fields = (
            "id",
            "forge",
            "forge_kind",
            "path",
            "visibility",
            "default_branch",
            "web_url",
            "flaky_runs",
            "quarantine",
        )
        read_only_fields = fields

    def get_flaky_runs(self, repository: Repository) -> int:
        found = getattr(repository, "flaky_runs", None)
        if found is None:  # not annotated (chains/retrying.py with_flakiness)
            return retrying.flakiness(Run.objects.filter(repository=repository)).get(
                repository.pk, 0
            )
        return int(found)

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "reason": {"type": "string"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_quarantine(self, repository: Repository) -> dict[str, str] | None:
        if hasattr(repository, "quarantine_reason"):  # chains/quarantine.py with_quarantine
            reason = getattr(repository, "quarantine_reason", None)
            expires = getattr(repository, "quarantine_expires_at", None)
        else:
            found = quarantine.active(repository)
            reason, expires = (found.reason, found.expires_at) if found else (None, None)
        if reason is None or expires is None:
            return None
        return {"reason": reason, "expires_at": expires.isoformat()}


CHAIN_FIELDS: tuple[str, ...] = (
    "id",
    "forge",
    "repository",
    "project",
    "change_number",
    "change_url",
    "title",
    "author",
    "runs_for",
    "actor",
    "source_branch",
    "target_branch",
    "head_sha",
    "upstream_ref",
    "from_fork",
    "reason",
    "status",
    "error",
    "superseded_by",
    "created_at",
    "updated_at",
    "finished_at",
)


class ChainSerializer(serializers.ModelSerializer[Chain]):
    forge = serializers.CharField(source="forge.slug", read_only=True)
    project = serializers.CharField(source="repository.path", read_only=True)
    change_url = OptionalURLField()
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    superseded_by = serializers.IntegerField(
        source="superseded_by_id", allow_null=True, read_only=True
    )

    class Meta:
        model = Chain
        fields = CHAIN_FIELDS
        read_only_fields = fields

    def to_representation(self, instance: Chain) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if data.get("error"):
            data["error"] = scrub(data["error"], _hidden_names(self, instance.pk))
        return data


class RunAttemptSerializer(serializers.ModelSerializer[RunAttempt]):
    """An earlier attempt of a run, kept when it was retried."""

    remote_id = serializers.CharField(allow_null=True, read_only=True)
    web_url = OptionalURLField()
    error = serializers.CharField(allow_null=True, read_only=True)

    class Meta:
        model = RunAttempt
        fields = (
            "number",
            "status",
            "remote_id",
            "web_url",
            "error",
            "triggered_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


class FailedJobSerializer(serializers.Serializer[Any]):
    """A failed job of a run's pipeline (chains/failures.py)."""

    name = serializers.CharField(read_only=True)
    stage = serializers.CharField(read_only=True, help_text='GitLab\'s stage ("" on GitHub)')
    reason = serializers.CharField(
        read_only=True,
        help_text="The forge's word: GitLab's failure_reason (script_failure, "
        "stuck_or_timeout_failure, …) or GitHub's job conclusion (failure, timed_out, …)",
    )
    url = serializers.CharField(read_only=True, help_text='The job\'s web page ("" if none)')
    step = serializers.CharField(read_only=True, help_text='GitHub\'s failed step ("" if none)')


class RunSerializer(serializers.Serializer[Run]):
    """One downstream pipeline of a chain."""

    id = serializers.IntegerField(read_only=True)
    chain = serializers.IntegerField(source="chain_id", read_only=True)
    parent = serializers.IntegerField(source="parent_id", allow_null=True, read_only=True)
    depth = serializers.IntegerField(read_only=True)
    private = serializers.SerializerMethodField(
        help_text="True when the run's project is one the user may not view"
    )
    project = serializers.CharField(
        source="repository.path", read_only=True, help_text='Its path, or "private project"'
    )
    repository = serializers.IntegerField(source="repository_id", allow_null=True, read_only=True)
    forge = serializers.CharField(source="repository.forge.slug", allow_null=True, read_only=True)
    key = serializers.CharField(allow_null=True, read_only=True)
    label = serializers.CharField(allow_null=True, read_only=True)
    is_child = serializers.BooleanField(read_only=True)
    ref = serializers.CharField(allow_null=True, read_only=True)
    workflow = serializers.CharField(allow_null=True, read_only=True)
    variables = serializers.DictField(
        child=serializers.CharField(), allow_null=True, read_only=True
    )
    masked_variables = serializers.SerializerMethodField(
        help_text=f'Names of the masked variables sent, each mapped to "{MASK}"'
    )
    undelivered = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        read_only=True,
        help_text="Variables that did not reach the pipeline: inputs a GitHub workflow does not "
        "declare, or all of them for a re-run mode (a re-run keeps the pipeline's own)",
    )
    mode = serializers.CharField(
        read_only=True,
        help_text="new (a pipeline is created), or a re-run mode (rerun-latest, "
        "rerun-last-successful): the error then says when a finished pipeline was reused "
        "and nothing new was triggered",
    )
    strategy = serializers.ChoiceField(choices=Run.Strategy.choices, read_only=True)
    interruptible = serializers.BooleanField(read_only=True)
    soft_fail = serializers.BooleanField(read_only=True)
    soft_failed = serializers.SerializerMethodField(
        help_text="True when the run failed and is allowed to (soft_fail): upstream it passes, "
        "shown as soft-failed"
    )
    depends_on = serializers.ListField(
        child=serializers.CharField(), allow_null=True, read_only=True
    )
    deploy_environment = serializers.CharField(allow_null=True, read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    error = serializers.CharField(allow_null=True, read_only=True)
    failed_jobs = serializers.SerializerMethodField(
        help_text="Why its pipeline failed (a failed run's current attempt): up to 10 failed "
        "jobs as the forge named them; stage is GitLab's, step GitHub's failed step"
    )
    attempt = serializers.IntegerField(read_only=True)
    retry_max = serializers.IntegerField(
        read_only=True, help_text="Automatic retries its `retry:` allows (attempts: 1 + this)"
    )
    retried_for = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text='The failure reason the current attempt is an automatic retry for ("" if none)',
    )
    quarantine_reason = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text='Its project was quarantined (its failure is a soft failure): why ("" if not)',
    )
    cancel_requested = serializers.BooleanField(read_only=True)
    remote_id = serializers.CharField(allow_null=True, read_only=True)
    web_url = OptionalURLField()
    created_at = serializers.DateTimeField(read_only=True)
    triggered_at = serializers.DateTimeField(allow_null=True, read_only=True)
    started_at = serializers.DateTimeField(allow_null=True, read_only=True)
    finished_at = serializers.DateTimeField(allow_null=True, read_only=True)

    @extend_schema_field(FailedJobSerializer(many=True, allow_null=True))
    def get_failed_jobs(self, run: Run) -> list[dict[str, str]]:
        return [job.as_dict() for job in failures.shown(run)]

    def get_soft_failed(self, run: Run) -> bool:
        return soft_failed(run)

    def get_private(self, run: Run) -> bool:
        return not _access(self).sees(run.repository_id)

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "string"}, "nullable": True}
    )
    def get_masked_variables(self, run: Run) -> dict[str, str] | None:
        return {str(name): MASK for name in sorted(run.masked_variables or {})}

    def to_representation(self, instance: Run) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if _access(self).sees(instance.repository_id):
            if data.get("error") or data.get("depends_on") or data.get("failed_jobs"):
                names = _hidden_names(self, instance.chain_id)
                data["error"] = scrub(data["error"] or "", names) or data["error"]
                data["failed_jobs"] = failures.scrubbed({"jobs": data["failed_jobs"]}, names)[
                    "jobs"
                ]
                data["depends_on"] = [
                    PRIVATE_WORDS if key in names else key for key in data["depends_on"] or []
                ]
            return data
        return {**data, **dict.fromkeys(PRIVATE_RUN_FIELDS), "project": PRIVATE}


class RunDetailSerializer(RunSerializer):
    attempts = RunAttemptSerializer(many=True, read_only=True)

    def to_representation(self, instance: Run) -> dict[str, Any]:
        data = super().to_representation(instance)
        if data["private"]:
            data["attempts"] = [
                {**attempt, **dict.fromkeys(PRIVATE_ATTEMPT_FIELDS)} for attempt in data["attempts"]
            ]
        elif any(attempt.get("error") for attempt in data["attempts"]):
            names = _hidden_names(self, instance.chain_id)
            data["attempts"] = [
                {**attempt, "error": scrub(attempt["error"], names) if attempt["error"] else None}
                if attempt.get("error")
                else attempt
                for attempt in data["attempts"]
            ]
        return data


class ChainDetailSerializer(ChainSerializer):
    runs = RunSerializer(many=True, read_only=True)
    expected_finish = serializers.SerializerMethodField(
        help_text="A running chain's expected finish: median of each remaining target's last "
        "successful runs along the depends_on path (docs/dashboard.md); null: finished or no "
        "history yet"
    )
    expected_finish_p90 = serializers.SerializerMethodField(
        help_text="The same with each remaining target at its 90th percentile"
    )
    estimate = serializers.SerializerMethodField(
        help_text="The estimate in words: 'expected to finish ~14:05 UTC (90 %: 14:12 UTC)', "
        "'no estimate yet', or '' when nothing is left to run"
    )

    class Meta(ChainSerializer.Meta):
        fields = (*CHAIN_FIELDS, "runs", "expected_finish", "expected_finish_p90", "estimate")
        read_only_fields = fields

    def _eta(self, chain: Chain) -> eta.Estimate:
        cache: dict[int, eta.Estimate] = self.__dict__.setdefault("_etas", {})
        if chain.pk not in cache:
            cache[chain.pk] = eta.for_chain(chain, list(chain.runs.all()))
        return cache[chain.pk]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expected_finish(self, chain: Chain) -> str | None:
        at = self._eta(chain).p50
        return serializers.DateTimeField().to_representation(at) if at else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expected_finish_p90(self, chain: Chain) -> str | None:
        at = self._eta(chain).p90
        return serializers.DateTimeField().to_representation(at) if at else None

    def get_estimate(self, chain: Chain) -> str:
        return eta.describe(self._eta(chain), utc=True)
