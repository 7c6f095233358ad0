"""Checks that a report page is self-contained: parsed, never matched with regexes."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

from PIL import Image

DATA_PNG = "data:image/png;base64,"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._hidden = 0  # inside <style>/<title>: not text a reader sees

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "title"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._hidden -= 1

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def visible_text(page: str) -> str:
    """The page's text as a reader sees it (entities decoded, tags dropped)."""
    return " ".join(" ".join(parse(page).text).split())


def embedded_png_bytes(page: str) -> list[bytes]:
    """The bytes of every <img>; fails if one is not embedded as a data: PNG."""
    found = []
    for tag, attrs in parse(page).tags:
        if tag != "img":
            continue
        src = attrs.get("src") or ""
        assert src.startswith(DATA_PNG), f"<img> not embedded as a PNG data URI: {src[:80]}"
        found.append(base64.b64decode(src[len(DATA_PNG) :], validate=True))
    return found


def embedded_pngs(page: str) -> list[Image.Image]:
    """Every <img>, decoded; fails if one is not a real, non-trivial PNG."""
    images = []
    for data in embedded_png_bytes(page):
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        images.append(image)
    return images


def external_references(page: str) -> list[str]:
    """src/href/… that would load something: anything but data: URIs and #fragments."""
    found = []
    for tag, attrs in parse(page).tags:
        if tag in ("script", "iframe", "object", "embed", "link", "base"):
            found.append(f"<{tag}>")
        for name in ("src", "href", "srcset", "action", "data", "poster"):
            value = attrs.get(name)
            if value is not None and not value.startswith(("data:", "#")):
                found.append(f"<{tag} {name}={value!r}>")
    return found


class _Tables(HTMLParser):
    """Rows of the tables inside one ``<section id=...>``, as lists of cell texts."""

    def __init__(self, section_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.section_id = section_id
        self.rows: list[list[str]] = []
        self._depth = 0  # >0: inside the section (counting nested sections)
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "section" and (self._depth or dict(attrs).get("id") == self.section_id):
            self._depth += 1
        elif self._depth and tag == "tr":
            self.rows.append([])
        elif self._depth and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "section" and self._depth:
            self._depth -= 1
        elif self._cell is not None and tag in ("td", "th"):
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page: str, section_id: str) -> list[list[str]]:
    """Every table row of the page's section ``section_id``: header and body, in order."""
    tables = _Tables(section_id)
    tables.feed(page)
    tables.close()
    return tables.rows
