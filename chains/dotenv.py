"""`params_file:` dotenv files (comments, quotes, `export` prefix), read with python-dotenv."""

from __future__ import annotations

import io

from django.conf import settings
from dotenv import dotenv_values

from chains.config import ConfigError
from chains.limits import LimitError, check_size


def parse_dotenv(text: str, *, path: str = "params_file") -> dict[str, str]:
    """The file's variables; ConfigError (in words) above BATON_MAX_CONFIG_BYTES or
    BATON_MAX_VARIABLES."""
    try:
        check_size(text, path)
    except LimitError as exc:
        raise ConfigError(str(exc)) from None
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    if len(values) > settings.BATON_MAX_VARIABLES:
        raise ConfigError(
            f"{path} has {len(values)} variables; at most {settings.BATON_MAX_VARIABLES} "
            "(BATON_MAX_VARIABLES)"
        )
    return {key: value or "" for key, value in values.items()}
