"""The smallest textual edit of a ``.usda`` file, accepted only when USD reads it as the intended layer.

Re-serialising a hand-written layer through Sdf loses its comments and its
ordering. For the one-line edits a run makes in the user's shot (a sublayer
entry, a ``skel:animationSource`` target) we edit the text itself instead,
then parse the edited text and compare it with the layer the Sdf API
produced: only an exact match is used. Anything else (an unusual header, a
list-op we would have to rewrite) falls back to a full Sdf export; the exact
original bytes are kept by the journal either way, so undo is byte-identical.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

_OPEN = {"(": ")", "[": "]", "{": "}"}


def _skip_literal(text: str, i: int) -> int:
    """Index just past the string/asset/comment/path starting at ``i``, or ``i`` if none starts there."""
    for quote in ('"""', "'''", "@@@"):
        if text.startswith(quote, i):
            end = text.find(quote, i + 3)
            return len(text) if end < 0 else end + 3
    c = text[i]
    if c in "\"'":
        j = i + 1
        while j < len(text) and text[j] != c:
            j += 2 if text[j] == "\\" else 1
        return j + 1
    if c == "@":
        end = text.find("@", i + 1)
        return len(text) if end < 0 else end + 1
    if c == "<":
        end = text.find(">", i + 1)
        return len(text) if end < 0 else end + 1
    if c == "#" or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    return i


def _top_level(text: str, start: int, stop: int) -> Iterator[int]:
    """Indices in [start, stop) at bracket depth 0, outside strings, assets and comments."""
    depth, i = 0, start
    while i < stop:
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        c = text[i]
        if c in _OPEN:
            if depth == 0:
                yield i
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            yield i
        i += 1


def _match(text: str, i: int) -> int:
    """Index of the bracket closing the one at ``i``."""
    close = _OPEN[text[i]]
    depth, j = 0, i
    while j < len(text):
        k = _skip_literal(text, j)
        if k != j:
            j = k
            continue
        if text[j] in _OPEN:
            depth += 1
        elif text[j] in ")]}":
            depth -= 1
            if depth == 0:
                if text[j] != close:
                    break
                return j
        j += 1
    raise ValueError("unbalanced brackets")


def _skip_blank(text: str, i: int) -> int:
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        j = _skip_literal(text, i)
        if j != i and (text[i] == "#" or text.startswith(("//", "/*"), i)):
            i = j
            continue
        break
    return i


def _header(text: str) -> tuple[int, int | None]:
    """(end of the magic line, index of the header's '(' or None)."""
    first = text.find("\n")
    if not text.startswith("#usda") or first < 0:
        raise ValueError("not a usda text layer")
    i = _skip_blank(text, first + 1)
    return first + 1, (i if i < len(text) and text[i] == "(" else None)


def _sublayers_list(text: str) -> tuple[int, int] | None:
    """Span of the header's ``subLayers = [...]`` brackets, or None."""
    _, open_ = _header(text)
    if open_ is None:
        return None
    close = _match(text, open_)
    for i in _top_level(text, open_ + 1, close):
        if text.startswith("subLayers", i) and not (text[i - 1].isalnum() or text[i - 1] == "_"):
            j = _skip_blank(text, i + len("subLayers"))
            if j < len(text) and text[j] == "=":
                j = _skip_blank(text, j + 1)
                if j < len(text) and text[j] == "[":
                    return j, _match(text, j)
    return None


def insert_sublayer_candidates(text: str, entry: str) -> list[str]:
    """Texts with ``entry`` made the strongest sublayer (first in the list)."""
    asset = f"@{entry}@"
    span = _sublayers_list(text)
    if span is not None:
        open_, close = span
        inner = text[open_ + 1:close]
        if not inner.strip():
            return [text[:open_ + 1] + asset + text[close:]]
        first = _skip_blank(text, open_ + 1)
        gap = text[open_ + 1:first]
        if "\n" in gap:  # one entry per line: copy the first entry's indentation
            indent = gap[gap.rfind("\n") + 1:]
            return [text[:open_ + 1] + "\n" + indent + asset + "," + text[open_ + 1:]]
        return [text[:first] + asset + ", " + text[first:]]
    magic_end, open_ = _header(text)
    block = f"    subLayers = [\n        {asset}\n    ]\n"
    if open_ is None:
        return [text[:magic_end] + "(\n" + block + ")\n" + text[magic_end:]]
    close = _match(text, open_)
    before = text[:close].rstrip(" \t")
    sep = "" if before.endswith("\n") else "\n"
    return [before + sep + block + text[close:]]


def remove_sublayer_candidates(text: str, entry: str) -> list[str]:
    """Texts without the sublayer entry ``entry`` (with its offset, if any)."""
    span = _sublayers_list(text)
    if span is None:
        return []
    open_, close = span
    out = []
    for m in re.finditer(re.escape(f"@{entry}@"), text[open_:close]):
        start = open_ + m.start()
        end = open_ + m.end()
        j = _skip_blank(text, end)
        if j < close and text[j] == "(":  # layer offset
            end = _match(text, j) + 1
            j = _skip_blank(text, end)
        if j < close and text[j] == ",":
            k = j + 1
            while k < close and text[k] in " \t":
                k += 1
            if text[k:k + 1] == "\n":  # drop the whole line
                line = text.rfind("\n", 0, start)
                out.append(text[:line] + text[k:])
            out.append(text[:start] + text[k:])
        else:
            prev = text[:start].rstrip()
            if prev.endswith(","):
                cut = len(prev) - 1
                out.append(text[:cut] + text[end:])
            else:
                out.append(text[:start] + text[end:])
                line = text.rfind("\n", 0, start)
                out.append(text[:line] + text[end:])
    return out


def replace_target_candidates(text: str, old_target: str, new_target: str) -> list[str]:
    """Texts with one ``skel:animationSource`` relationship's target ``<old>`` replaced by ``<new>``."""
    pattern = re.compile(r"skel:animationSource\s*=\s*(\[\s*)?<" + re.escape(old_target) + ">")
    out = []
    for m in pattern.finditer(text):
        seg = m.group(0)
        out.append(text[:m.start()] + seg.replace(f"<{old_target}>", f"<{new_target}>") + text[m.end():])
    return out


def normalised(text: str) -> str:
    """How USD itself writes the layer ``text`` parses to (for comparing two texts as layers)."""
    from pxr import Sdf

    layer = Sdf.Layer.CreateAnonymous(".usda")
    if not layer.ImportFromString(text):
        raise ValueError("unparsable")
    return layer.ExportToString()


def first_matching(candidates: Iterable[str], expected: str) -> str | None:
    """The first candidate text USD reads as the same layer as ``expected`` (itself USD-written text)."""
    from pxr import Tf

    want = normalised(expected)
    for candidate in candidates:
        try:
            if normalised(candidate) == want:
                return candidate
        except (ValueError, Tf.ErrorException):
            continue
    return None
