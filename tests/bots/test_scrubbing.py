"""The intake's scrubbing: masked values are looked for in the payload's JSON text first, and
the admin rules' masked values are kept decrypted per process for a few seconds."""

from __future__ import annotations

import pytest

from bots import scrubbing
from chains.masking import MASK
from chains.models import Rule
from tests import factories as f

QUOTED = 'say "hi"-secret'
SLASHED = "back\\slash-secret"
CONTROL = "new\nline-secret"
PLAIN = "plain-secret-value"


def test_values_json_escapes_are_taken_out_too() -> None:
    payload = {
        "title": f"deploy {QUOTED} and {SLASHED}",
        "nested": [{"note": CONTROL}, {QUOTED: "as a key"}],
        "object_attributes": {"variables": [{"key": "TOKEN", "value": "by-name-only"}]},
    }
    text = scrubbing.json.dumps(payload, ensure_ascii=False)
    values = frozenset({QUOTED, SLASHED, CONTROL, PLAIN})
    clean = scrubbing._scrubbed(payload, text, values, frozenset({"TOKEN"}), hide=False)
    shown = repr(clean)
    for value in (QUOTED, SLASHED, CONTROL, "by-name-only"):
        assert value not in shown
    assert clean["title"] == f"deploy {MASK} and {MASK}"
    assert clean["object_attributes"]["variables"][0] == {"key": "TOKEN", "value": MASK}


def test_a_payload_holding_no_masked_value_is_left_as_it_is() -> None:
    payload = {"title": "nothing secret", "project": {"path": "acme/app"}}
    text = scrubbing.json.dumps(payload, ensure_ascii=False)
    values, names = frozenset({PLAIN, "x"}), frozenset({"TOKEN"})
    assert scrubbing._scrubbed(payload, text, values, names, hide=False) == payload
    hidden = {"inputs": {"TOKEN": "t", "OTHER": "o"}}
    text = scrubbing.json.dumps(hidden, ensure_ascii=False)
    assert scrubbing._scrubbed(hidden, text, frozenset(), names, hide=True) == {
        "inputs": {"TOKEN": MASK, "OTHER": MASK}
    }


RULE = """variables:
  DEPLOY_TOKEN: {{value: {value}, masked: true}}
downstream:
  - project: acme/target
"""


@pytest.mark.django_db
def test_a_saved_rule_s_masked_value_is_taken_out_at_once() -> None:
    forge = f.forge()
    rule = Rule.objects.create(
        name="r", projects="acme/*", config=RULE.format(value="first-s3cret")
    )
    payload = {"title": "first-s3cret then second-s3cret"}
    assert scrubbing.scrub_payload(forge, "Merge Request Hook", payload)["title"] == (
        f"{MASK} then second-s3cret"
    )
    rule.config = RULE.format(value="second-s3cret")
    rule.secrets = {}
    rule.save()
    assert scrubbing.scrub_payload(forge, "Merge Request Hook", payload)["title"] == (
        f"first-s3cret then {MASK}"
    )


@pytest.mark.django_db
def test_the_text_intake_stores_is_the_scrubbed_payload_s() -> None:
    forge = f.forge()
    Rule.objects.create(name="r", projects="acme/*", config=RULE.format(value="first-s3cret"))
    for title in ("nothing to take out", "first-s3cret in the title"):
        payload = {"title": title, "unicode": "é ✓"}
        clean, text = scrubbing.scrubbed(forge, "Merge Request Hook", payload)
        assert scrubbing.json.loads(text) == clean
        assert "first-s3cret" not in text
    assert clean["title"] == f"{MASK} in the title"
