"""The HIERARCHY block of a BVH file: a small iterative parser over whitespace tokens.

Tokens keep their line numbers so every error names the line; the grammar is
``ROOT name { OFFSET x y z [CHANNELS n names...] (JOINT ... | End Site { OFFSET x y z })* }``,
one or more ROOTs, in any whitespace (tabs, CRLF, braces on the name's line).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd.errors import InputError

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")


class Tokens:
    """Whitespace tokens of the HIERARCHY block with their line numbers."""

    def __init__(self, lines: list[str], file: str):
        self.items: list[tuple[str, int]] = []
        for n, line in enumerate(lines, 1):
            self.items.extend((tok, n) for tok in line.split())
        self.pos = 0
        self.file = file
        self.last_line = len(lines)

    def error(self, message: str, line: int | None = None) -> InputError:
        line = line if line is not None else self.line
        return InputError(f"line {line}: {message}", file=self.file)

    @property
    def line(self) -> int:
        if self.pos < len(self.items):
            return self.items[self.pos][1]
        return self.last_line

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"file ends inside the HIERARCHY block (expected {what}; truncated?)")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, found {tok!r}", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"{what}: {tok!r} is not a number", line) from None
        if not np.isfinite(value):
            raise self.error(f"{what}: {tok!r} is not finite", line)
        return value


@dataclass
class Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]
    line: int


def parse_joint(tokens: Tokens, name: str, parent: int, line: int, joints: list[Joint],
                end_sites: list[tuple[int, np.ndarray]]) -> None:
    """Parse joint ``name`` (its name already read) and every joint below it into ``joints``.

    Iterative, with an explicit stack of open joints: a chain thousands of
    joints deep (a rope, a tail, a hostile file) must not hit Python's recursion limit.
    """
    stack = [_open(tokens, name, parent, line, joints)]
    with_channels: set[int] = set()
    while stack:
        index = stack[-1]
        joint = joints[index]
        name = joint.name
        tok, tline = tokens.next("'}'")
        if tok == "OFFSET":
            if joint.offset is not None:
                raise tokens.error(f"joint {name!r} has two OFFSET lines", tline)
            joint.offset = np.array([tokens.number(f"OFFSET of {name!r}") for _ in range(3)])
        elif tok == "CHANNELS":
            if index in with_channels:
                raise tokens.error(f"joint {name!r} has two CHANNELS lines", tline)
            with_channels.add(index)
            _parse_channels(tokens, joint)
        elif tok == "JOINT":
            child, cline = tokens.next("a joint name")
            _check_offset(tokens, joint)
            stack.append(_open(tokens, child, index, cline, joints))
        elif tok == "End":
            tokens.expect("Site")
            _check_offset(tokens, joint)
            tokens.expect("{")
            tokens.expect("OFFSET")
            offset = np.array([tokens.number(f"End Site OFFSET of {name!r}") for _ in range(3)])
            tokens.expect("}")
            end_sites.append((index, offset))
        elif tok == "}":
            _check_offset(tokens, joint)
            stack.pop()
        else:
            raise tokens.error(f"unexpected {tok!r} in joint {name!r}", tline)


def _open(tokens: Tokens, name: str, parent: int, line: int, joints: list[Joint]) -> int:
    """Read the '{' after a joint's name and append the joint; returns its index."""
    tokens.expect("{")
    joints.append(Joint(name, parent, None, [], line))  # type: ignore[arg-type]
    return len(joints) - 1


def _parse_channels(tokens: Tokens, joint: Joint) -> None:
    name = joint.name
    count_tok, cline = tokens.next("a channel count")
    if not count_tok.isdigit():
        raise tokens.error(f"CHANNELS of {name!r}: expected a channel count, found {count_tok!r}", cline)
    count = int(count_tok)
    for _ in range(count):
        ch, chline = tokens.next(f"{count} channel names for {name!r}")
        if ch not in CHANNEL_NAMES:
            if ch in ("JOINT", "End", "}", "OFFSET", "CHANNELS"):
                raise tokens.error(
                    f"CHANNELS of {name!r} declares {count} channels but lists {len(joint.channels)}", chline)
            raise tokens.error(f"unknown channel {ch!r} on joint {name!r} "
                               f"(known: {', '.join(CHANNEL_NAMES)})", chline)
        if ch in joint.channels:
            raise tokens.error(f"channel {ch!r} listed twice on joint {name!r}", chline)
        joint.channels.append(ch)


def _check_offset(tokens: Tokens, joint: Joint) -> None:
    if joint.offset is None:
        raise tokens.error(f"joint {joint.name!r} has no OFFSET", joint.line)
