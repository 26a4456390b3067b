"""The words of the emails, in ``activities/templates/``, filled in with ``string.Template``.

A text template takes its values as they are. An HTML template escapes every value (its
own markup is the only markup), and its line breaks are for reading: the HTML it renders
has none. A template that names a value it is not given is an error, not a blank.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template


@cache
def _template(name: str) -> Template:
    text = resources.files("activities").joinpath("templates", name).read_text()
    if name.endswith(".html"):
        text = "".join(text.splitlines())
    return Template(text)


def render_text(name: str, **values: object) -> str:
    """The text template ``name`` with ``values`` as they are."""
    return _template(name).substitute({key: str(value) for key, value in values.items()})


def render_html(name: str, **values: object) -> str:
    """The HTML template ``name`` with ``values`` escaped (quotes too: safe in attributes)."""
    return _template(name).substitute(
        {key: html.escape(str(value), quote=True) for key, value in values.items()}
    )
