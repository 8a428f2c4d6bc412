"""Payment arrangements: a creditor's policy and the offers it allows (pure arithmetic).

Money is integer cents, dates are ``datetime.date`` and ``today`` is always an argument: nothing
here reads the clock or does I/O. An arrangement the policy forbids raises ``PlanError`` with a
message saying what is allowed; an invalid policy raises ``PolicyError`` naming the creditor and
the field.

Rounding is explicit and never uses floats:

* pay-in-full discount: the amount to pay is rounded DOWN (the debtor's favour);
* settlement: the amount is rounded UP, so it is never below the percentage the creditor set;
* instalment plan: equal instalments rounded down, the last one absorbs the remaining cents.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from itertools import pairwise
from typing import Literal

from ivr._exceptions import PlanError, PolicyError

SecondFactor = Literal["dob", "postal_code", "id_last4"]
SECOND_FACTORS: tuple[SecondFactor, ...] = ("dob", "postal_code", "id_last4")
OfferKind = Literal["full", "settlement", "plan"]

_DAY = timedelta(days=1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class InstalmentPolicy:
    """The payment plans a creditor accepts (months in ``[min_months, max_months]``)."""

    min_months: int = 2
    max_months: int = 12
    min_instalment_cents: int = 1000
    # The first instalment's requested date must be at most this many days after today.
    first_within_days: int = 30


@dataclass(frozen=True, slots=True)
class CreditorPolicy:
    """A creditor's arrangement policy (the ``creditors.policy`` jsonb column).

    The constructor does not validate: build policies from data with :meth:`from_json`.
    ``discount_until=None`` with a non-zero ``discount_pct`` means the discount never expires.
    ``settlement_min_pct=None`` means no settlement; ``instalments=None`` means no plans (the
    default: a creditor must opt in to plans explicitly, even with ``"instalments": {}``).
    """

    second_factor: SecondFactor = "dob"
    discount_pct: int = 0
    discount_until: date | None = None
    settlement_min_pct: int | None = None
    instalments: InstalmentPolicy | None = None
    promise_max_days: int = 30
    promise_min_cents: int = 1
    max_verify_failures: int = 3
    lockout_minutes: int = 30
    holidays: frozenset[date] = frozenset()
    # The disclosure prompt read before the debt is discussed (a prompt id of ivr/prompts.yaml);
    # None: the one of the debtor's jurisdiction.
    disclosure: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, object], *, creditor: str) -> CreditorPolicy:
        """Validate a decoded policy object; raise ``PolicyError`` naming the first bad field."""
        return _PolicyReader(creditor).policy(data)


class _PolicyReader:
    """Reads one creditor's policy, so every error names the creditor and the field path."""

    def __init__(self, creditor: str) -> None:
        self.creditor = creditor

    def error(self, where: str, expected: str, value: object) -> PolicyError:
        return PolicyError(
            f"creditor {self.creditor!r}: {where}: expected {expected}, got {value!r}"
        )

    def obj(self, data: object, where: str, cls: type) -> Mapping[str, object]:
        if not isinstance(data, Mapping):
            raise self.error(where, "an object", data)
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise PolicyError(
                    f"creditor {self.creditor!r}: {where}.{key}: unknown field"
                    f" (known: {', '.join(known)})"
                )
        return data

    def whole(
        self, data: Mapping[str, object], where: str, key: str, lo: int, hi: int | None
    ) -> int:
        """``data[key]`` as an int in ``[lo, hi]``; the caller handles a missing key."""
        raw = data[key]
        value = int(raw) if isinstance(raw, float) and raw.is_integer() else raw
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < lo
            or (hi is not None and value > hi)
        ):
            expected = (
                f"a whole number between {lo} and {hi}"
                if hi is not None
                else f"a whole number of at least {lo}"
            )
            raise self.error(f"{where}.{key}", expected, raw)
        return value

    def numbers(
        self, data: Mapping[str, object], where: str, limits: dict[str, tuple[int, int | None]]
    ) -> dict[str, int]:
        """The whole-number fields present in ``data``, each checked against its limits."""
        return {k: self.whole(data, where, k, *limits[k]) for k in limits if k in data}

    def iso_date(self, value: object, where: str) -> date:
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(where, "an ISO date (YYYY-MM-DD)", value)

    def policy(self, raw: object) -> CreditorPolicy:
        data = self.obj(raw, "policy", CreditorPolicy)
        factor = data.get("second_factor", "dob")
        if factor not in SECOND_FACTORS:
            expected = "one of " + ", ".join(map(repr, SECOND_FACTORS))
            raise self.error("policy.second_factor", expected, factor)
        until = data.get("discount_until")
        plans = data.get("instalments")
        holidays = data.get("holidays", [])
        if not isinstance(holidays, list | tuple):
            raise self.error("policy.holidays", "a list of ISO dates", holidays)
        # settlement_min_pct is the only nullable number (null = no settlement offered).
        present = {k: v for k, v in data.items() if k != "settlement_min_pct" or v is not None}
        disclosure = data.get("disclosure")
        if disclosure is not None and not (
            isinstance(disclosure, str)
            and _PROMPT_ID.fullmatch(disclosure)
            and disclosure.startswith("disclosure_")
        ):
            # (any prompt id, e.g. 'welcome', would have replaced the disclosure owed)
            raise self.error(
                "policy.disclosure", "a disclosure prompt id such as 'disclosure_us'", disclosure
            )
        return CreditorPolicy(
            second_factor=factor,
            disclosure=disclosure,  # checked against SECOND_FACTORS above
            discount_until=None if until is None else self.iso_date(until, "policy.discount_until"),
            instalments=None if plans is None else self.instalments(plans),
            holidays=frozenset(
                self.iso_date(h, f"policy.holidays[{i}]") for i, h in enumerate(holidays)
            ),
            **self.numbers(present, "policy", _POLICY_NUMBERS),
        )

    def instalments(self, raw: object) -> InstalmentPolicy:
        where = "policy.instalments"
        data = self.obj(raw, where, InstalmentPolicy)
        plans = InstalmentPolicy(**self.numbers(data, where, _INSTALMENT_NUMBERS))
        if plans.min_months > plans.max_months:
            expected = f"at most max_months ({plans.max_months})"
            raise self.error(f"{where}.min_months", expected, plans.min_months)
        return plans


_PROMPT_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Whole-number fields and their (lowest, highest) allowed values; None = no upper limit.
_POLICY_NUMBERS: dict[str, tuple[int, int | None]] = {
    "discount_pct": (0, 99),  # 100 would forgive the whole debt: that is a write-off, not an offer
    "settlement_min_pct": (1, 100),
    "promise_max_days": (1, 90),
    "promise_min_cents": (1, None),
    "max_verify_failures": (1, 10),
    "lockout_minutes": (1, 10080),
}
_INSTALMENT_NUMBERS: dict[str, tuple[int, int | None]] = {
    "min_months": (2, 12),
    "max_months": (2, 12),
    "min_instalment_cents": (1, None),
    "first_within_days": (1, 90),
}


# --- Calendar -------------------------------------------------------------------------------


def add_months(d: date, n: int) -> date:
    """``d`` moved ``n`` calendar months, clamped to the month's end (Jan 31 + 1 = Feb 28/29)."""
    year, month0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(year, month0 + 1, min(d.day, calendar.monthrange(year, month0 + 1)[1]))


def is_business_day(d: date, holidays: frozenset[date]) -> bool:
    """Monday to Friday and not one of ``holidays``."""
    return d.weekday() < 5 and d not in holidays


def next_business_day(d: date, holidays: frozenset[date]) -> date:
    """``d`` itself if it is a business day, else the first business day after it."""
    while not is_business_day(d, holidays):
        d += _DAY
    return d


# --- Offers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instalment:
    due: date
    amount_cents: int

    def to_json(self) -> dict[str, object]:
        return {"due": self.due.isoformat(), "amount_cents": self.amount_cents}


@dataclass(frozen=True, slots=True)
class Offer:
    """An arrangement: what is paid, when, and how much of the balance is forgiven."""

    kind: OfferKind
    total_cents: int
    instalments: tuple[Instalment, ...]
    discount_cents: int = 0

    def __post_init__(self) -> None:
        paid = sum(i.amount_cents for i in self.instalments)
        if not self.instalments or paid != self.total_cents:
            raise ValueError(f"instalments do not add up to total_cents: {self!r}")

    @property
    def months(self) -> int:
        """The number of payments (1 for a full payment or a settlement)."""
        return len(self.instalments)

    def to_json(self) -> dict[str, object]:
        """Plain JSON for ``promises.plan``; ``instalments`` is ``[{"due", "amount_cents"}]``."""
        return {
            "kind": self.kind,
            "total_cents": self.total_cents,
            "months": self.months,
            "discount_cents": self.discount_cents,
            "instalments": [i.to_json() for i in self.instalments],
        }


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _cents(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (cents), got {value!r}")
    return value


def _balance(balance_cents: int) -> int:
    if _cents(balance_cents, "balance_cents") <= 0:
        raise PlanError(f"nothing to arrange: the balance is {_money(balance_cents)}")
    return balance_cents


def _single(
    kind: OfferKind, amount: int, balance: int, policy: CreditorPolicy, today: date
) -> Offer:
    """One payment of ``amount``, due the next business day from today."""
    due = next_business_day(today, policy.holidays)
    return Offer(kind, amount, (Instalment(due, amount),), discount_cents=balance - amount)


def full_payment(balance_cents: int, policy: CreditorPolicy, today: date) -> Offer:
    """Pay everything now, less the pay-in-full discount while it is valid (through its date).

    The amount is rounded down to the cent, but at least one cent is always paid.
    """
    balance = _balance(balance_cents)
    valid = policy.discount_until is None or today <= policy.discount_until
    pct = policy.discount_pct if valid else 0
    amount = max(1, balance * (100 - pct) // 100)
    return _single("full", amount, balance, policy, today)


def settlement(
    balance_cents: int, policy: CreditorPolicy, today: date, pct: int | None = None
) -> Offer:
    """A lump sum of ``pct`` percent of the balance (default: the creditor's minimum)."""
    balance = _balance(balance_cents)
    minimum = policy.settlement_min_pct
    if minimum is None:
        raise PlanError("this creditor does not offer settlements")
    pct = minimum if pct is None else pct
    if not minimum <= pct <= 100:
        raise PlanError(f"a settlement must be {minimum}% to 100% of the balance, got {pct}%")
    amount = -(-balance * pct // 100)  # rounded up: never below the percentage agreed
    return _single("settlement", amount, balance, policy, today)


def _plans(policy: CreditorPolicy) -> InstalmentPolicy:
    if policy.instalments is None:
        raise PlanError("this creditor does not offer payment plans")
    return policy.instalments


def max_plan_months(balance_cents: int, policy: CreditorPolicy) -> int | None:
    """The longest plan the minimum instalment allows, or None when no plan is possible."""
    plans = policy.instalments
    if plans is None or _cents(balance_cents, "balance_cents") <= 0:
        return None
    most = min(plans.max_months, balance_cents // plans.min_instalment_cents)
    return most if most >= plans.min_months else None


def instalment_plan(
    balance_cents: int,
    months: int,
    policy: CreditorPolicy,
    today: date,
    first_due: date | None = None,
) -> Offer:
    """``months`` monthly instalments paying the whole balance.

    ``first_due`` (default: tomorrow) must be between today and ``first_within_days`` after
    today. Instalment ``k`` falls ``k`` months after ``first_due`` (counted from the first date,
    so the day of the month does not drift: Jan 31, Feb 28, Mar 31), moved forward to a business
    day.
    """
    balance = _balance(balance_cents)
    plans = _plans(policy)
    if not plans.min_months <= months <= plans.max_months:
        raise PlanError(
            f"a plan must run {plans.min_months} to {plans.max_months} months, got {months}"
        )
    base = balance // months
    if base < plans.min_instalment_cents:
        most = max_plan_months(balance, policy)
        hint = f"at most {most} months" if most else "no plan is possible for this balance"
        raise PlanError(
            f"each instalment must be at least {_money(plans.min_instalment_cents)}:"
            f" {_money(balance)} over {months} months is {_money(base)} a month ({hint})"
        )
    anchor = today + _DAY if first_due is None else first_due
    latest = today + timedelta(days=plans.first_within_days)
    if not today <= anchor <= latest:
        raise PlanError(f"the first payment must fall between {today} and {latest}, got {anchor}")
    dues = [next_business_day(add_months(anchor, k), policy.holidays) for k in range(months)]
    for earlier, later in pairwise(dues):
        if later <= earlier:
            raise PlanError(f"holidays leave no business day for the payment after {earlier}")
    amounts = [base] * (months - 1) + [balance - base * (months - 1)]
    return Offer(
        "plan", balance, tuple(Instalment(d, a) for d, a in zip(dues, amounts, strict=True))
    )


def offers(balance_cents: int, policy: CreditorPolicy, today: date) -> list[Offer]:
    """The menu: pay in full, the minimum settlement, the shortest and the longest plan.

    A settlement that is not cheaper than paying in full today is left out; a zero balance has
    no offers.
    """
    if _cents(balance_cents, "balance_cents") == 0:
        return []
    full = full_payment(balance_cents, policy, today)
    menu = [full]
    if policy.settlement_min_pct is not None:
        deal = settlement(balance_cents, policy, today)
        if deal.total_cents < full.total_cents:
            menu.append(deal)
    most = max_plan_months(balance_cents, policy)
    if policy.instalments is not None and most is not None:
        for months in sorted({policy.instalments.min_months, most}):
            menu.append(instalment_plan(balance_cents, months, policy, today))
    return menu


def check_promise(
    amount_cents: int, due: date, balance_cents: int, policy: CreditorPolicy, today: date
) -> None:
    """Raise ``PlanError`` unless a promise to pay ``amount_cents`` on ``due`` is allowed.

    Any day counts, weekends included. A balance below ``promise_min_cents`` may still be
    promised in full.
    """
    balance = _balance(balance_cents)
    lowest = min(policy.promise_min_cents, balance)
    if not lowest <= _cents(amount_cents, "amount_cents") <= balance:
        raise PlanError(
            f"a promise must be between {_money(lowest)} and {_money(balance)},"
            f" got {_money(amount_cents)}"
        )
    latest = today + timedelta(days=policy.promise_max_days)
    if not today <= due <= latest:
        raise PlanError(f"a promise date must be between {today} and {latest}, got {due}")


# --- Confirmation codes ---------------------------------------------------------------------


def _luhn_digit(payload: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        digit = int(ch) * (2 if i % 2 == 0 else 1)  # the payload's last digit is doubled
        total += digit - 9 if digit > 9 else digit
    return -total % 10


def confirmation_code(n: int) -> str:
    """8 digits: ``n % 10**7`` zero-padded, then a Luhn check digit (catches a misheard digit)."""
    payload = f"{n % 10**7:07d}"
    return payload + str(_luhn_digit(payload))


def confirmation_code_ok(code: str) -> bool:
    """True when ``code`` is 8 ASCII digits whose last one is the Luhn check digit."""
    return (
        len(code) == 8
        and code.isascii()
        and code.isdigit()
        and _luhn_digit(code[:7]) == int(code[7])
    )
