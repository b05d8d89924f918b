"""course_lib.claims: claim checks print, raise, and are recorded for the course site."""

from __future__ import annotations

import pytest

from course_lib import claims


@pytest.fixture(autouse=True)
def _empty_record(monkeypatch):
    monkeypatch.setattr(claims, "_CHECKED", [])


def test_claims_are_recorded_in_order_passed_or_not(capsys):
    claims.claim(1 < 2, "one is less than two", "1 < 2")
    with pytest.raises(AssertionError, match="Claim not confirmed: wrong .ratio 3.0."):
        claims.claim(3.0 < 2, "wrong", "ratio 3.0")
    assert capsys.readouterr().out == "\u2714 one is less than two (1 < 2)\n"
    assert claims.checked() == [
        {"statement": "one is less than two", "evidence": "1 < 2", "passed": True},
        {"statement": "wrong", "evidence": "ratio 3.0", "passed": False},
    ]


def test_the_record_is_a_copy_and_can_be_cleared():
    claims.claim(True, "holds")
    record = claims.checked()
    record[0]["passed"] = False
    assert claims.checked()[0]["passed"] is True
    claims.clear()
    assert claims.checked() == []


def test_a_claims_value_and_bound_are_recorded_not_printed(capsys):
    claims.claim(0.97 > 0.93, "accurate enough", "97 %", value=0.97, bound="> 0.93")
    assert capsys.readouterr().out == "\u2714 accurate enough (97 %)\n"
    assert claims.checked() == [
        {"statement": "accurate enough", "evidence": "97 %", "passed": True, "value": 0.97,
         "bound": "> 0.93"},
    ]  # fmt: skip
