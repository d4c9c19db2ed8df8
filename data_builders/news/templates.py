"""Metadata templates rendered with character offsets.

A template is a list of fields, each rendered by a line format (default ``"{NAME}: {value}\\n"``),
then a separator (default ``"\\n"``) and the body (default ``"TITLE: {title}\\n\\nCONTENT: {text}"``,
or ``"CONTENT: {text}"`` when there is no title). ``full`` gives the reference work's
``URL: …\\nCOUNTRY: …\\nCONTINENT: …\\n\\n`` block. The renderer returns each field's character span
and the end of the block, which the encoder turns into token spans and the loss mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metacond import MetacondError

FIELDS = ("url", "country", "continent")
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

    def __post_init__(self) -> None:
        if self.fields is None:
            if self.name not in TEMPLATES:
                raise MetacondError(f"unknown template {self.name!r}; choose from {', '.join(TEMPLATES)} or give fields")
            self.fields = TEMPLATES[self.name]
        bad = [f for f in self.fields if f not in FIELDS]
        if bad:
            raise MetacondError(f"unknown metadata field {bad[0]!r}; fields are {', '.join(FIELDS)}")
        for fmt, keys in ((self.line_format, ("value",)), (self.body_format, ("text",)), (self.body_format_no_title, ("text",))):
            try:
                fmt.format(NAME="X", name="x", value="v", title="t", text="b")
            except (KeyError, IndexError, ValueError) as e:
                raise MetacondError(f"template format {fmt!r} is invalid: {e}") from None
            if not all("{" + k + "}" in fmt for k in keys):
                raise MetacondError(f"template format {fmt!r} must contain {{{keys[0]}}}")

    def block(self, values: dict[str, Any]) -> str:
        """The metadata block alone (with its separator), as it precedes a document; "" without fields."""
        doc, _, end = self.render(values, None, "")
        return doc[:end]

    def render(self, values: dict[str, Any], title: str | None, text: str, drop: tuple[bool, ...] | None = None) -> tuple[str, list[tuple[int, int]], int]:
        """(document, per-field character spans, end of the metadata block)."""
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        for i, f in enumerate(self.fields):
            if drop is not None and drop[i]:
                continue
            line = self.line_format.format(NAME=f.upper(), name=f, value=values[f])
            parts.append(line)
            spans.append((pos, pos + len(line)))
            pos += len(line)
        if spans and self.separator:
            parts.append(self.separator)
            pos += len(self.separator)
            spans[-1] = (spans[-1][0], pos)  # the blank line belongs to the block
        block_end = pos
        body = self.body_format.format(title=title, text=text) if title else self.body_format_no_title.format(text=text)
        parts.append(body)
        return "".join(parts), spans, block_end
