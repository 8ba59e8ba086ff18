"""Building blocks of the strategies: Unicode text, RFC 3339 date-times, arbitrary JSON values.

What they draw is described in :mod:`harness.server.strategies` ("What the generated content looks
like"); :mod:`harness.server.strategies.valid` and :mod:`harness.server.strategies.near_misses`
build on them.
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

_MAX_SAFE_INT = 2**53  # integers beyond this lose precision in JavaScript clients
_DEFAULT_MAX_LENGTH = 40  # free text without maxLength or text_limit


def unicode_text_alphabet() -> SearchStrategy[str]:
    """Single characters: any Unicode but surrogates and NUL, astral ones mixed in on purpose."""
    anything = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    astral = st.characters(min_codepoint=0x10000, exclude_categories=["Cs", "Cn"])
    return st.one_of(anything, astral)


@st.composite
def _text_of_length(draw: st.DrawFn, length: int, alphabet: SearchStrategy[str]) -> str:
    """Text of exactly *length* code points; long ones repeat a random chunk between random ends
    (drawing hundreds of characters one by one would exhaust hypothesis's data budget)."""
    if length <= 64:
        return draw(st.text(alphabet, min_size=length, max_size=length))
    head = draw(st.text(alphabet, min_size=1, max_size=32))
    tail = draw(st.text(alphabet, min_size=1, max_size=32))
    chunk = draw(st.text(alphabet, min_size=1, max_size=8))
    middle = (chunk * length)[: length - len(head) - len(tail)]
    return head + middle + tail


def unicode_text(
    min_size: int = 0,
    max_size: int | None = None,
    *,
    near: int | None = None,
    alphabet: SearchStrategy[str] | None = None,
) -> SearchStrategy[str]:
    """Text of *min_size*..*max_size* code points; with *near*, lengths cluster around it."""
    chars = alphabet if alphabet is not None else unicode_text_alphabet()
    if near is not None:
        upper = near + 1 if max_size is None else min(max_size, near + 1)
        close = [n for n in (near - 1, near, near + 1) if min_size <= n <= upper]
        lengths: SearchStrategy[int] = st.integers(min_size, max(min_size, upper))
        if close:
            lengths = st.one_of(st.sampled_from(close), lengths)
    else:
        upper = max_size if max_size is not None else min_size + _DEFAULT_MAX_LENGTH
        lengths = st.integers(min_size, upper)
    return lengths.flatmap(lambda n: _text_of_length(n, chars))


@st.composite
def rfc3339_datetimes(draw: st.DrawFn) -> str:
    """RFC 3339 date-times with a time zone in the shapes servers and clients commonly send."""
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)))
    digits = draw(st.integers(0, 9))
    fraction = (
        "." + draw(st.text(string.digits, min_size=digits, max_size=digits)) if digits else ""
    )
    sign = draw(st.sampled_from("+-"))
    hours = draw(st.integers(0, 14))
    minutes = draw(st.sampled_from((0, 30, 45)))
    zone = draw(st.sampled_from(("Z", "+00:00", f"{sign}{hours:02d}:{minutes:02d}")))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


def json_values(alphabet: SearchStrategy[str] | None = None) -> SearchStrategy[Any]:
    """Small arbitrary JSON values (what ``json.loads`` returns), nested at most a few levels."""
    text = unicode_text(0, 12, alphabet=alphabet)
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
        ),
        max_leaves=6,
    )


def _json_type(value: object) -> str:
    """The JSON type name of a parsed JSON value (``1.0`` counts as an integer, as in 2020-12)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")
