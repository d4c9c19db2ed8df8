"""Metadata templates rendered with character offsets.

A template is a list of fields in prefix order, each rendered by a line format (default
``"{NAME}: {value}\\n"``), then a separator (default ``"\\n"``) and the body (default
``"TITLE: {title}\\n\\nCONTENT: {text}"``, or ``"CONTENT: {text}"`` when there is no title). ``full``
gives the reference work's ``URL: …\\nCOUNTRY: …\\nCONTINENT: …\\n\\n`` block. The renderer returns each
field's character span and the end of the block, which the encoder turns into token spans and the loss mask.

A field is derived (``url``, ``country``, ``continent``: from the URL or a country column, see
``metadata.py``) or any other input column, named as the column is (``dateline``, ``date``,
``outlet``…). Templates are named presets (``TEMPLATES``) or a comma list of fields, e.g.
``country,dateline``; a field marked ``?`` (``dateline?``) is optional: a document without a value
loses that line, while a document without a required field is dropped by the builder (counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from metacond import MetacondError

DERIVED_FIELDS = ("url", "country", "continent")
# Columns of a kept row that are not metadata values (the body, identifiers, resolution bookkeeping).
RESERVED_FIELDS = ("title", "text", "document", "doc_id", "short_url", "source_url", "country_name", "country_source", "country_code")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "none": (),
    "url": ("url",),
    "country": ("country",),
    "continent": ("continent",),
    "url_country": ("url", "country"),
    "url_continent": ("url", "continent"),
    "full": ("url", "country", "continent"),
}


@dataclass
class Template:
    name: str = "full"
    line_format: str = "{NAME}: {value}\n"
    separator: str = "\n"
    body_format: str = "TITLE: {title}\n\nCONTENT: {text}"
    body_format_no_title: str = "CONTENT: {text}"
    fields: tuple[str, ...] | None = None
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fields is None:
            if self.name in TEMPLATES:
                self.fields = TEMPLATES[self.name]
            else:
                self.fields, self.optional = parse_fields(self.name)
                self.name = template_name(self.name)
        self.fields = tuple(self.fields)
        for f in self.fields:
            check_field(f)
        if len(set(self.fields)) != len(self.fields):
            raise MetacondError(f"template {self.name!r} names a field twice")
        for fmt, keys in ((self.line_format, ("value",)), (self.body_format, ("text",)), (self.body_format_no_title, ("text",))):
            try:
                fmt.format(NAME="X", name="x", value="v", title="t", text="b")
            except (KeyError, IndexError, ValueError) as e:
                raise MetacondError(f"template format {fmt!r} is invalid: {e}") from None
            if not all("{" + k + "}" in fmt for k in keys):
                raise MetacondError(f"template format {fmt!r} must contain {{{keys[0]}}}")

    @property
    def field_names(self) -> tuple[str, ...]:
        """``fields`` as ``__post_init__`` resolved them (from the preset or the field list in ``name``)."""
        assert self.fields is not None, "Template.__post_init__ always sets fields"
        return self.fields

    @property
    def column_fields(self) -> tuple[str, ...]:
        """Fields read from an input column of the same name (not derived)."""
        return tuple(f for f in self.field_names if f not in DERIVED_FIELDS)

    def block(self, values: dict[str, Any]) -> str:
        """The metadata block alone (with its separator), as it precedes a document; "" without fields."""
        doc, _, end = self.render(values, None, "")
        return doc[:end]

    def render(self, values: dict[str, Any], title: str | None, text: str, drop: tuple[bool, ...] | None = None) -> tuple[str, list[tuple[int, int]], int]:
        """(document, one character span per template field, end of the metadata block).

        A field left out (dropped at build time, or optional without a value) keeps an empty span where its line
        would be, so span ``i`` is always field ``i`` and train-time per-field dropout hits the field it names."""
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        for i, f in enumerate(self.field_names):
            if (drop is not None and drop[i]) or (values.get(f) in (None, "") and f in self.optional):
                spans.append((pos, pos))
                continue
            if values.get(f) in (None, ""):
                raise MetacondError(f"no value for the required metadata field {f!r} (mark it optional as {f + '?'!r} to leave its line out)")
            line = self.line_format.format(NAME=f.upper(), name=f, value=values[f])
            parts.append(line)
            spans.append((pos, pos + len(line)))
            pos += len(line)
        shown = [i for i, (a, b) in enumerate(spans) if b > a]
        if shown and self.separator:
            parts.append(self.separator)
            pos += len(self.separator)
            last = shown[-1]  # the blank line belongs to the block: to its last line, never to an empty span
            spans[last] = (spans[last][0], pos)
            spans[last + 1:] = [(pos, pos)] * (len(spans) - last - 1)
        block_end = pos
        body = self.body_format.format(title=title, text=text) if title else self.body_format_no_title.format(text=text)
        parts.append(body)
        return "".join(parts), spans, block_end


def check_field(name: str) -> None:
    """One line for a field name the renderer cannot take."""
    if not _FIELD_NAME.match(name):
        raise MetacondError(f"metadata field {name!r} must be a lower-case column name (letters, digits, '_')")
    if name in RESERVED_FIELDS:
        raise MetacondError(f"{name!r} cannot be a metadata field (reserved: {', '.join(RESERVED_FIELDS)})")


def parse_fields(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fields, optional fields) of a comma list such as ``country,dateline?`` (or a name such as ``country+dateline``);
    a preset name gives its fields."""
    spec = spec.strip()
    if spec in TEMPLATES:
        return TEMPLATES[spec], ()
    parts = [x.strip() for x in re.split(r"[,+]", spec)]  # '+' too: a template's name reads back as its fields
    if not spec or not all(parts):
        raise MetacondError(f"unknown template {spec!r}; choose from {', '.join(TEMPLATES)} or give a comma list of fields (e.g. 'country,dateline?')")
    # Template.__post_init__ checks each name (one place for the field rules).
    return tuple(x.rstrip("?") for x in parts), tuple(x.rstrip("?") for x in parts if x.endswith("?"))


def template_name(spec: str) -> str:
    """A template's name in folders, manifests and task names: the preset's name, else its fields joined by '+'."""
    spec = spec.strip()
    if spec in TEMPLATES:
        return spec
    fields, _ = parse_fields(spec)
    preset = next((k for k, v in TEMPLATES.items() if v == fields), None)
    return preset or "+".join(fields)
