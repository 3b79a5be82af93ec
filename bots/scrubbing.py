"""Take known masked values out of a webhook payload before it is stored.

Forges echo the variables a pipeline was started with (GitLab's Pipeline Hook lists them under
``object_attributes.variables``), and a pipeline's name or a job's may show one. Before a
delivery is written, every value Baton knows to be masked is replaced by ``••••``: the masked
variables Baton sent to the runs of the chain the pipeline belongs to, and the masked variables
of the admin rules (by value anywhere, and by name where the payload lists variables).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.cache import caches
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bots import caching
from bots.events import RUN_ID_VARIABLE, MalformedPayload, PipelineEvent
from bots.inbound.table import INBOUND
from chains.masking import VARIABLE_KEYS, hide_variables, mask_named, scrub, secret_values
from chains.models import Forge, Repository, Rule, Run

RULE_SECRETS_SECONDS = 10.0  # a rule's new masked value is taken out everywhere within this long
LOCAL = "local"  # per process: the values are held decrypted, never in a shared cache
_RULE_SECRETS_KEY = "rule-secrets"


def rule_secrets() -> tuple[frozenset[str], frozenset[str]]:
    """(values, names) of every admin rule's masked variables: decrypted once per process and
    RULE_SECRETS_SECONDS, not on every delivery (the process that saves a rule forgets them at
    once; the others within RULE_SECRETS_SECONDS)."""
    return caching.remembered(
        _RULE_SECRETS_KEY, RULE_SECRETS_SECONDS, _load_rule_secrets, alias=LOCAL
    )


@receiver([post_save, post_delete], sender=Rule)
def _forget_rule_secrets(sender: type[Rule], instance: Rule, **kwargs: object) -> None:
    caches[LOCAL].delete(_RULE_SECRETS_KEY)


def _load_rule_secrets() -> tuple[frozenset[str], frozenset[str]]:
    values: set[str] = set()
    names: set[str] = set()
    for secrets in Rule.objects.values_list("secrets", flat=True):
        for where, value in (secrets or {}).items():
            values |= secret_values([value])
            names.add(str(where).rsplit(".", 1)[-1])
    return frozenset(values), frozenset(names)


# One statement, written out: the ORM spent ~1 ms of CPU compiling its equivalent (a subquery
# under two ORed lookups through the repository), on every pipeline webhook, at intake and again
# in the worker: more than the rest of a delivery's intake together (docs/benchmarks.md, F4).
_CHAIN_SECRETS_SQL = """
SELECT masked_variables FROM {run} WHERE has_masked_variables AND chain_id IN (
    SELECT run.chain_id FROM {run} run JOIN {repository} repository
        ON repository.id = run.repository_id
    WHERE repository.forge_id = %s AND (run.remote_id = %s OR run.id = %s)
    ORDER BY run.chain_id DESC LIMIT 10
)"""


def chain_secrets(forge: Forge, event: PipelineEvent) -> tuple[set[str], set[str]]:
    """(values, names) of the masked variables sent to the runs of the pipeline's chains: one
    query, which decrypts only the runs that have some (most have none), so its cost does not
    grow with the chain's size. The pipeline's runs are found by pipeline id, or by the
    BATON_RUN_ID it shows, in the newest ten chains that have one (taking out more than needed
    only hides more)."""
    marker = event.variables.get(RUN_ID_VARIABLE, "")
    run_id = int(marker) if marker.isascii() and marker.isdigit() and len(marker) < 19 else None
    sql = _CHAIN_SECRETS_SQL.format(run=Run._meta.db_table, repository=Repository._meta.db_table)
    field: Any = Run._meta.get_field("masked_variables")  # EncryptedJSONField: decrypts
    values: set[str] = set()
    names: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(sql, [forge.pk, event.pipeline_id, run_id])
        rows = cursor.fetchall()
    for (stored,) in rows:
        masked = field.from_db_value(stored, None, connection) or {}
        values |= secret_values(masked.values())
        names |= {str(name) for name in masked}
    return values, names


# What JSON written with ``ensure_ascii=False`` escapes (quotes, backslashes, control
# characters), and the MASK's bullet.
_NOT_VERBATIM = re.compile(r'["\\\x00-\x1f•]')


def _verbatim(text: str) -> bool:
    """Whether ``text`` shows unchanged inside JSON written with ``ensure_ascii=False`` and
    cannot be made by a MASK."""
    return _NOT_VERBATIM.search(text) is None


def _occurring(words: frozenset[str], text: str) -> frozenset[str]:
    """The ``words`` that may occur in the JSON ``text``: all but those it surely lacks."""
    return frozenset(w for w in words if w in text or not _verbatim(w))


def scrub_payload(
    forge: Forge, event_name: str, payload: Any, *, parsed: PipelineEvent | None = None
) -> Any:
    """The payload as it may be stored: known masked values replaced by ••••. ``parsed``: its
    pipeline event, when the caller has it already (not parsed again)."""
    return scrubbed(forge, event_name, payload, parsed=parsed)[0]


def scrubbed(
    forge: Forge, event_name: str, payload: Any, *, parsed: PipelineEvent | None = None
) -> tuple[Any, str]:
    """``scrub_payload``'s answer and its JSON text (intake stores the text as it is).

    One look at the payload as JSON text first: only the masked values and names it may hold
    are looked for, and the walks are skipped when none may (the usual case). Only news of
    pipelines is parsed here: the other events echo no variable Baton sent."""
    values, names = rule_secrets()  # shared, never changed in place
    text = json.dumps(payload, ensure_ascii=False)
    inbound = INBOUND.get(forge.kind)
    if inbound is None or not inbound.handles(event_name):
        # Baton never reads these (a GitHub repository_dispatch echoes the client_payload Baton
        # sent, a workflow_dispatch its inputs): no variable value of them is kept.
        return _as_text(_scrubbed(payload, text, values, names, hide=True), payload, text)
    if event_name in inbound.TRACKING_EVENTS:
        event: Any = parsed
        if event is None:
            try:
                event = inbound.parse(event_name, payload)
            except MalformedPayload:
                event = None
        if isinstance(event, PipelineEvent):
            sent_values, sent_names = chain_secrets(forge, event)
            values, names = values | sent_values, names | sent_names
    return _as_text(_scrubbed(payload, text, values, names, hide=False), payload, text)


def _as_text(clean: Any, payload: Any, text: str) -> tuple[Any, str]:
    """``clean`` and its JSON: ``text`` again when nothing was taken out (the walks copy)."""
    return clean, text if clean is payload else json.dumps(clean, ensure_ascii=False)


def _scrubbed(
    payload: Any, text: str, values: frozenset[str], names: frozenset[str], *, hide: bool
) -> Any:
    values = _occurring(values, text)
    if values:
        payload = scrub(payload, values)
    if not any(f'"{key}"' in text for key in VARIABLE_KEYS):
        return payload  # no variables echoed: nothing to mask by name or to hide
    payload = mask_named(payload, _occurring(names, text))
    return hide_variables(payload) if hide else payload
