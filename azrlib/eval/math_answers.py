"""Math answers: the extracted answer against the gold with `math_verify` (`parse`, `verify`),
or'ed with an exact comparison of normalized strings / numbers (the fallback when math_verify
cannot parse either side).
"""

from __future__ import annotations

import math
import re

from azrlib.eval.verdict import Verdict


_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def normalize_math_answer(text: str) -> str:
    """A light normal form for the exact fallback: no $, spaces, \\text{}, \\left/\\right, degree
    signs, thousands separators or trailing period."""
    s = str(text).strip()
    s = _TEXT_WRAPPERS.sub(r"\1", s)
    for old in ("$", "\\left", "\\right", "\\!", "\\,", "\\;", "^\\circ", "^{\\circ}", "\\%", "%", " "):
        s = s.replace(old, "")
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    return s


def _as_number(text: str) -> float | None:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?))?", text)
    if m is None:
        m2 = re.fullmatch(r"(-?)\\d?frac\{(\d+)\}\{(\d+)\}", text)
        if m2 is None:
            return None
        value = float(m2.group(2)) / float(m2.group(3)) if float(m2.group(3)) else None
        return -value if value is not None and m2.group(1) else value
    numerator = float(m.group(1))
    if m.group(2) is None:
        return numerator
    denominator = float(m.group(2))
    return numerator / denominator if denominator else None


def exact_math_equal(gold: str, answer: str) -> bool:
    """The fallback: equal normalized strings, or equal numbers (relative tolerance 1e-9)."""
    a, b = normalize_math_answer(gold), normalize_math_answer(answer)
    if a == b and a != "":
        return True
    x, y = _as_number(a), _as_number(b)
    return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def math_equal(gold: str, answer: str | None) -> Verdict:
    """math_verify equivalence of the gold answer and an extracted (boxed) answer, or'ed with
    `exact_math_equal`."""
    if answer is None or not str(answer).strip():
        return Verdict(False, "no answer")
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - math-verify is in the `eval` extra
        parse = verify = None
    if parse is not None:
        try:
            gold_parsed = parse(f"${gold}$")
            answer_parsed = parse(f"\\boxed{{{answer}}}")
            if gold_parsed and answer_parsed and verify(gold_parsed, answer_parsed):
                return Verdict(True, "math_verify")
        except Exception:  # noqa: BLE001 - sympy/latex2sympy failures: use the exact fallback
            pass
    if exact_math_equal(gold, str(answer)):
        return Verdict(True, "exact")
    return Verdict(False, "different value")
