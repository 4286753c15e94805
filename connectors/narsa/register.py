"""The simulated NARSA licence register: which numbers exist, and what NARSA knows of them.

Real licence numbers have no public format, so the hub never validates their shape; the simulator
needs *some* rule to answer realistically from the request alone:

- the number's digits end with a Luhn check digit; a number whose check digit is wrong is a
  forgery: ``NOT_AUTHENTIC`` (reason ``CHECKSUM``);
- the first two digits are the issuing centre; centres 90-99 do not exist, so such a number is not
  in the register: ``UNKNOWN`` (reason ``NOT_IN_REGISTER``);
- otherwise the licence is ``AUTHENTIC``; its status comes from the second-to-last digit
  (7 suspended, 8 cancelled, anything else valid).

`licence_number` makes numbers with a chosen answer for tests and the demo.
"""
from __future__ import annotations

import re
from datetime import date


def luhn_check_digit(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def luhn_valid(digits: str) -> bool:
    return len(digits) >= 2 and luhn_check_digit(digits[:-1]) == int(digits[-1])


def licence_number(*, centre: int = 12, serial: int = 345678, answer: str = "authentic",
                   status: str = "valid") -> str:
    """A licence number in the ``CC/SSSSSSK`` form that the simulator answers as asked."""
    if answer == "unknown":
        centre = 90 + centre % 10
    marker = {"valid": 1, "suspended": 7, "cancelled": 8}[status]
    body = f"{centre:02d}{serial:06d}{marker}"
    check = luhn_check_digit(body)
    if answer == "not_authentic":
        check = (check + 5) % 10
    return f"{body[:2]}/{body[2:]}{check}"


def lookup(number: str) -> tuple[str, str | None, str | None]:
    """(result, reason, status) for a licence number, as NARSA would answer."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 6 or not luhn_valid(digits):
        return "NOT_AUTHENTIC", "CHECKSUM", None
    if int(digits[:2]) >= 90:
        return "UNKNOWN", "NOT_IN_REGISTER", None
    status = {"7": "SUSPENDED", "8": "CANCELLED"}.get(digits[-2], "VALID")
    return "AUTHENTIC", None, status


def issue_date(number: str) -> date:
    """A stable issue date derived from the number (the register's record of it)."""
    digits = re.sub(r"\D", "", number)
    return date(2010 + int(digits[2:4]) % 15, 1 + int(digits[4:6]) % 12, 1 + int(digits[6:8]) % 28)
