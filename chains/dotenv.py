"""`params_file:` dotenv files (comments, quotes, `export` prefix), read with python-dotenv."""

from __future__ import annotations

import io

from dotenv import dotenv_values


def parse_dotenv(text: str) -> dict[str, str]:
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value or "" for key, value in values.items()}
