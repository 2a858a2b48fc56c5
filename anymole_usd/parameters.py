"""Declared plugin parameters: one declaration gives validation, coercion, defaults and help.

A plugin lists its parameters once::

    PARAMETERS = Parameters(
        Param("threshold_scale", 1.0, "transition threshold, x mean nearest-neighbour distance", min=0,
              min_exclusive=True),
        Param("search", "auto", "path search: dp, beam, or beam for long gaps", choices=("dp", "beam", "auto")),
    )

and ``PARAMETERS.validate(given, owner="graph prior")`` turns command-line
strings into typed values, rejects unknown names, NaN/inf and out-of-range
values with an :class:`InputError` (exit 2), while ``describe()`` feeds
``anymole-usd plugins --details``. Help text and checks come from the same
place, so they cannot drift apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import InputError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, one-line meaning and what values are allowed.

    ``type`` defaults to the default's type (bool, int, float or str); ``None``
    defaults need an explicit ``type``. ``nullable`` admits None ("unset").
    ``type=object`` passes the value through unchecked (programmatic values such
    as a render Character, which cannot come from the command line).
    """

    name: str
    default: Any
    help: str
    type: type | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple | None = None
    nullable: bool = False

    @property
    def kind(self) -> type:
        if self.type is not None:
            return self.type
        if self.default is None:
            return str
        return type(self.default)

    def allowed(self) -> str:
        """Human text for the allowed values ("> 0", "0..1", "one of dp, beam")."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "true/false"
        lo = None if self.min is None else (">" if self.min_exclusive else ">=") + f" {self.min:g}"
        hi = None if self.max is None else ("<" if self.max_exclusive else "<=") + f" {self.max:g}"
        if lo and hi and not self.min_exclusive and not self.max_exclusive:
            return f"{self.min:g}..{self.max:g}"
        return ", ".join(p for p in (lo, hi) if p) or "any"

    def coerce(self, value: Any, owner: str) -> Any:
        """Convert ``value`` (often a command-line string) to this parameter's type and check it."""

        def bad(why: str = "") -> InputError:
            extra = f": {why}" if why else ""
            return InputError(f"{owner}: bad value {value!r} for {self.name} ({self.allowed()}, default "
                              f"{self.default!r}){extra}")

        if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and self.nullable):
            if self.nullable:
                return None
            raise bad()
        kind = self.kind
        if kind is object:
            return value
        if kind is bool:
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                out = value.lower() in _TRUE
            elif isinstance(value, (int, float)) and value in (0, 1):
                out = bool(value)
            else:
                raise bad()
        elif kind in (int, float):
            if isinstance(value, bool):
                raise bad()
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise bad() from None
            if not math.isfinite(number):
                raise bad("must be finite")
            if kind is int:
                if number != int(number):
                    raise bad("must be a whole number")
                out = int(number)
            else:
                out = number
            if self.min is not None and (number < self.min or (self.min_exclusive and number == self.min)):
                raise bad()
            if self.max is not None and (number > self.max or (self.max_exclusive and number == self.max)):
                raise bad()
        else:
            if isinstance(value, (dict, list)):
                raise bad()
            out = kind(value)
        if self.choices and out not in self.choices:
            raise bad()
        return out

    def describe(self) -> dict:
        return {"name": self.name, "type": "any" if self.kind is object else self.kind.__name__,
                "default": self.default, "allowed": self.allowed(), "help": self.help}


class Parameters:
    """An ordered set of :class:`Param` declarations."""

    def __init__(self, *params: Param) -> None:
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self._params = {p.name: p for p in params}

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __contains__(self, name: str) -> bool:
        return name in self._params

    def __len__(self) -> int:
        return len(self._params)

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def names(self) -> list[str]:
        return list(self._params)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self}

    def extend(self, *params: Param) -> "Parameters":
        """A new set with more (or replaced) declarations, for subclasses."""
        merged = dict(self._params)
        merged.update({p.name: p for p in params})
        return Parameters(*merged.values())

    def validate(self, given: dict, owner: str) -> dict:
        """Typed, checked copy of ``given``; unknown names or bad values raise InputError."""
        unknown = sorted(set(given) - set(self._params))
        if unknown:
            known = f"known: {', '.join(self._params)}" if self._params else "it takes no parameters"
            raise InputError(f"{owner}: unknown parameter(s) {', '.join(unknown)} ({known})")
        return {k: self._params[k].coerce(v, owner) for k, v in given.items()}

    def resolve(self, given: dict, owner: str) -> dict:
        """Like :meth:`validate`, with every undeclared value filled from its default."""
        return {**self.defaults(), **self.validate(given, owner)}

    def describe(self) -> list[dict]:
        return [p.describe() for p in self]
