"""ivr.plans: policy parsing, calendar helpers, offers, promises and confirmation codes."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr._exceptions import PlanError, PolicyError
from ivr.plans import (
    CreditorPolicy,
    Instalment,
    InstalmentPolicy,
    Offer,
    add_months,
    check_promise,
    confirmation_code,
    confirmation_code_ok,
    full_payment,
    instalment_plan,
    is_business_day,
    max_plan_months,
    next_business_day,
    offers,
    settlement,
)

D = date.fromisoformat
NO_HOLIDAYS: frozenset[date] = frozenset()
PLANS = CreditorPolicy(instalments=InstalmentPolicy())  # 2..12 months, >= 10.00, first in 30 days


def policy(**data: object) -> CreditorPolicy:
    return CreditorPolicy.from_json(data, creditor="acme")


# --- CreditorPolicy.from_json ---------------------------------------------------------------


def test_empty_policy_is_the_defaults_and_offers_no_plan_or_settlement() -> None:
    p = policy()
    assert p == CreditorPolicy()
    assert p.second_factor == "dob"
    assert (p.discount_pct, p.discount_until, p.settlement_min_pct, p.instalments) == (
        0,
        None,
        None,
        None,
    )
    assert (p.promise_max_days, p.promise_min_cents) == (30, 1)
    assert (p.max_verify_failures, p.lockout_minutes, p.holidays) == (3, 30, frozenset())


def test_full_policy_is_read() -> None:
    p = policy(
        second_factor="postal_code",
        discount_pct=15,
        discount_until="2026-03-31",
        settlement_min_pct=60.0,  # an integral float from a JSON writer is accepted
        instalments={"min_months": 3, "max_months": 6, "min_instalment_cents": 2500},
        promise_max_days=14,
        promise_min_cents=500,
        max_verify_failures=5,
        lockout_minutes=1440,
        holidays=["2026-12-25", "2026-01-01"],
    )
    assert p == CreditorPolicy(
        second_factor="postal_code",
        discount_pct=15,
        discount_until=D("2026-03-31"),
        settlement_min_pct=60,
        instalments=InstalmentPolicy(3, 6, 2500, 30),
        promise_max_days=14,
        promise_min_cents=500,
        max_verify_failures=5,
        lockout_minutes=1440,
        holidays=frozenset({D("2026-12-25"), D("2026-01-01")}),
    )
    assert type(p.settlement_min_pct) is int


def test_empty_instalments_object_opts_in_with_default_limits() -> None:
    assert policy(instalments={}).instalments == InstalmentPolicy(2, 12, 1000, 30)
    assert policy(instalments=None, settlement_min_pct=None, discount_until=None) == policy()


def test_error_message_names_creditor_field_expectation_and_value() -> None:
    with pytest.raises(PolicyError) as err:
        policy(settlement_min_pct="abc")
    assert str(err.value) == (
        "creditor 'acme': policy.settlement_min_pct: "
        "expected a whole number between 1 and 100, got 'abc'"
    )


@pytest.mark.parametrize(
    ("data", "field", "shown"),
    [
        ({"second_factor": "ssn"}, "policy.second_factor", "'ssn'"),
        ({"second_factor": None}, "policy.second_factor", "None"),
        ({"discount_pct": -1}, "policy.discount_pct", "-1"),
        ({"discount_pct": 100}, "policy.discount_pct", "100"),
        ({"discount_pct": 12.5}, "policy.discount_pct", "12.5"),
        ({"discount_pct": True}, "policy.discount_pct", "True"),
        ({"discount_pct": None}, "policy.discount_pct", "None"),
        ({"discount_until": "31/03/2026"}, "policy.discount_until", "'31/03/2026'"),
        ({"discount_until": "20260331"}, "policy.discount_until", "'20260331'"),
        ({"discount_until": "2026-02-30"}, "policy.discount_until", "'2026-02-30'"),
        ({"settlement_min_pct": 0}, "policy.settlement_min_pct", "0"),
        ({"settlement_min_pct": 101}, "policy.settlement_min_pct", "101"),
        ({"instalments": []}, "policy.instalments", "[]"),
        ({"instalments": {"min_months": 1}}, "policy.instalments.min_months", "1"),
        ({"instalments": {"max_months": 13}}, "policy.instalments.max_months", "13"),
        (
            {"instalments": {"min_months": 6, "max_months": 4}},
            "policy.instalments.min_months",
            "6",
        ),
        (
            {"instalments": {"min_instalment_cents": 0}},
            "policy.instalments.min_instalment_cents",
            "0",
        ),
        (
            {"instalments": {"first_within_days": "30"}},
            "policy.instalments.first_within_days",
            "'30'",
        ),
        ({"promise_max_days": 0}, "policy.promise_max_days", "0"),
        ({"promise_max_days": 91}, "policy.promise_max_days", "91"),
        ({"promise_min_cents": 0}, "policy.promise_min_cents", "0"),
        ({"max_verify_failures": 11}, "policy.max_verify_failures", "11"),
        ({"lockout_minutes": 10081}, "policy.lockout_minutes", "10081"),
        ({"lockout_minutes": float("nan")}, "policy.lockout_minutes", "nan"),
        ({"holidays": "2026-12-25"}, "policy.holidays", "'2026-12-25'"),
        ({"holidays": ["2026-12-25", "xmas"]}, "policy.holidays[1]", "'xmas'"),
        ({"disclosure": "welcome"}, "policy.disclosure", "'welcome'"),  # not a disclosure
        ({"disclosure": "disclosure us"}, "policy.disclosure", "'disclosure us'"),
    ],
)
def test_every_bad_value_names_its_field(data: dict[str, object], field: str, shown: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy(**data)
    message = str(err.value)
    assert message.startswith(f"creditor 'acme': {field}: expected ")
    assert message.endswith(f", got {shown}")


def test_unknown_fields_are_errors_at_both_levels() -> None:
    with pytest.raises(PolicyError, match=r"^creditor 'acme': policy\.discount: unknown field"):
        policy(discount=10)
    with pytest.raises(
        PolicyError, match=r"^creditor 'acme': policy\.instalments\.months: unknown field"
    ):
        policy(instalments={"months": 3})


def test_policy_must_be_an_object() -> None:
    with pytest.raises(PolicyError, match=r"^creditor 'x': policy: expected an object, got \[\]"):
        CreditorPolicy.from_json([], creditor="x")  # type: ignore[arg-type]


# --- Calendar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2025-01-31", 1, "2025-02-28"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2025-01-31", 2, "2025-03-31"),
        ("2025-03-31", 1, "2025-04-30"),
        ("2025-11-15", 2, "2026-01-15"),
        ("2025-12-31", 12, "2026-12-31"),
        ("2025-03-31", -1, "2025-02-28"),
        ("2025-05-10", 0, "2025-05-10"),
    ],
)
def test_add_months_clamps_to_month_end(start: str, n: int, expected: str) -> None:
    assert add_months(D(start), n) == D(expected)


def test_next_business_day() -> None:
    assert next_business_day(D("2026-06-05"), NO_HOLIDAYS) == D("2026-06-05")  # Friday
    assert next_business_day(D("2026-06-06"), NO_HOLIDAYS) == D("2026-06-08")  # Sat -> Mon
    assert next_business_day(D("2026-06-07"), NO_HOLIDAYS) == D("2026-06-08")  # Sun -> Mon
    monday_off = frozenset({D("2026-06-08")})
    assert next_business_day(D("2026-06-06"), monday_off) == D("2026-06-09")
    assert next_business_day(D("2026-06-05"), frozenset({D("2026-06-05")})) == D("2026-06-08")


# --- Full payment and settlement ------------------------------------------------------------

DISCOUNT = CreditorPolicy(discount_pct=20, discount_until=D("2026-03-31"))


def test_discount_applies_through_its_last_day_rounded_in_the_debtors_favour() -> None:
    offer = full_payment(12347, DISCOUNT, D("2026-03-31"))  # a Tuesday
    # 80% of 123.47 is 98.776: the debtor pays 98.77 and 24.70 is forgiven.
    assert (offer.kind, offer.total_cents, offer.discount_cents, offer.months) == (
        "full",
        9877,
        2470,
        1,
    )
    assert offer.instalments == (Instalment(D("2026-03-31"), 9877),)


def test_discount_is_off_the_day_after() -> None:
    offer = full_payment(12347, DISCOUNT, D("2026-04-01"))
    assert (offer.total_cents, offer.discount_cents) == (12347, 0)


def test_discount_without_an_end_date_never_expires() -> None:
    assert full_payment(10000, CreditorPolicy(discount_pct=10), D("2099-01-01")).total_cents == 9000


def test_a_tiny_discounted_balance_still_pays_one_cent() -> None:
    offer = full_payment(50, CreditorPolicy(discount_pct=99), D("2026-03-02"))
    assert (offer.total_cents, offer.discount_cents) == (1, 49)


def test_full_payment_due_moves_off_weekend_and_holiday() -> None:
    p = CreditorPolicy(holidays=frozenset({D("2026-06-08")}))
    assert full_payment(5000, p, D("2026-06-06")).instalments[0].due == D("2026-06-09")


@pytest.mark.parametrize("balance", [0, -100])
def test_nothing_to_pay(balance: int) -> None:
    with pytest.raises(PlanError, match="nothing to arrange"):
        full_payment(balance, CreditorPolicy(), D("2026-03-02"))


def test_settlement_defaults_to_the_minimum_rounded_up() -> None:
    p = CreditorPolicy(settlement_min_pct=40)
    offer = settlement(1001, p, D("2026-03-02"))  # 40% of 10.01 is 4.004: never below 40%
    assert (offer.kind, offer.total_cents, offer.discount_cents) == ("settlement", 401, 600)
    assert offer.instalments == (Instalment(D("2026-03-02"), 401),)
    assert settlement(1001, p, D("2026-03-02"), pct=50).total_cents == 501
    assert settlement(1001, p, D("2026-03-02"), pct=100).total_cents == 1001


@pytest.mark.parametrize(("pct", "shown"), [(39, "got 39%"), (101, "got 101%")])
def test_settlement_outside_the_allowed_range(pct: int, shown: str) -> None:
    with pytest.raises(PlanError, match=f"must be 40% to 100% of the balance, {shown}"):
        settlement(1001, CreditorPolicy(settlement_min_pct=40), D("2026-03-02"), pct=pct)


def test_settlement_not_offered() -> None:
    with pytest.raises(PlanError, match="does not offer settlements"):
        settlement(1001, CreditorPolicy(), D("2026-03-02"))


# --- Instalment plans -----------------------------------------------------------------------


def test_one_thousand_over_three_months_last_absorbs_the_cents() -> None:
    offer = instalment_plan(100000, 3, PLANS, D("2025-01-15"), first_due=D("2025-01-31"))
    assert offer.kind == "plan"
    assert (offer.total_cents, offer.months, offer.discount_cents) == (100000, 3, 0)
    # Counted from the first date, not chained: Mar 31, not Mar 28.
    assert offer.instalments == (
        Instalment(D("2025-01-31"), 33333),
        Instalment(D("2025-02-28"), 33333),
        Instalment(D("2025-03-31"), 33334),
    )


def test_weekend_due_dates_move_to_monday_without_drifting() -> None:
    # 2026-01-31 and 2026-02-28 are Saturdays; 2026-03-31 is a Tuesday.
    offer = instalment_plan(100000, 3, PLANS, D("2026-01-20"), first_due=D("2026-01-31"))
    assert [i.due for i in offer.instalments] == [D("2026-02-02"), D("2026-03-02"), D("2026-03-31")]


def test_default_first_due_is_the_next_business_day_after_today() -> None:
    friday = D("2026-01-30")
    holiday = CreditorPolicy(instalments=InstalmentPolicy(), holidays=frozenset({D("2026-02-02")}))
    offer = instalment_plan(30000, 2, holiday, friday)
    assert [i.due for i in offer.instalments] == [D("2026-02-03"), D("2026-03-02")]
    assert [i.amount_cents for i in offer.instalments] == [15000, 15000]


def test_plan_to_json_is_plain_data() -> None:
    offer = instalment_plan(100001, 2, PLANS, D("2025-01-15"), first_due=D("2025-01-31"))
    assert offer.to_json() == {
        "kind": "plan",
        "total_cents": 100001,
        "months": 2,
        "discount_cents": 0,
        "instalments": [
            {"due": "2025-01-31", "amount_cents": 50000},
            {"due": "2025-02-28", "amount_cents": 50001},
        ],
    }


@pytest.mark.parametrize("months", [1, 13])
def test_months_outside_the_policy(months: int) -> None:
    with pytest.raises(PlanError, match=f"must run 2 to 12 months, got {months}"):
        instalment_plan(100000, months, PLANS, D("2026-03-02"))


def test_instalment_below_the_minimum_names_the_minimum() -> None:
    with pytest.raises(PlanError) as err:
        instalment_plan(5000, 6, PLANS, D("2026-03-02"))
    assert str(err.value) == (
        "each instalment must be at least 10.00: 50.00 over 6 months is 8.33 a month"
        " (at most 5 months)"
    )
    with pytest.raises(PlanError, match=r"\(no plan is possible for this balance\)"):
        instalment_plan(1999, 2, PLANS, D("2026-03-02"))


@pytest.mark.parametrize("first_due", ["2026-03-01", "2026-04-02"])
def test_first_due_outside_the_window(first_due: str) -> None:
    with pytest.raises(PlanError, match=f"between 2026-03-02 and 2026-04-01, got {first_due}$"):
        instalment_plan(100000, 3, PLANS, D("2026-03-02"), first_due=D(first_due))


def test_first_due_may_be_today_or_the_last_day_of_the_window() -> None:
    today = D("2026-03-02")
    assert instalment_plan(100000, 2, PLANS, today, first_due=today).instalments[0].due == today
    last = instalment_plan(100000, 2, PLANS, today, first_due=D("2026-04-01"))
    assert last.instalments[0].due == D("2026-04-01")


def test_plans_not_offered() -> None:
    with pytest.raises(PlanError, match="does not offer payment plans"):
        instalment_plan(100000, 3, CreditorPolicy(), D("2026-03-02"))


def test_a_month_of_holidays_is_refused_rather_than_two_payments_on_one_day() -> None:
    start = D("2026-03-02")
    closed = frozenset(start + timedelta(days=k) for k in range(1, 40))
    p = CreditorPolicy(instalments=InstalmentPolicy(), holidays=closed)
    with pytest.raises(PlanError, match="holidays leave no business day"):
        instalment_plan(100000, 2, p, start, first_due=start + timedelta(days=1))


@pytest.mark.parametrize(
    ("balance", "expected"), [(1999, None), (2000, 2), (5000, 5), (12000, 12), (10**9, 12)]
)
def test_max_plan_months(balance: int, expected: int | None) -> None:
    assert max_plan_months(balance, PLANS) == expected
    assert max_plan_months(balance, CreditorPolicy()) is None


def test_max_plan_months_respects_the_policy_minimum_months() -> None:
    p = CreditorPolicy(instalments=InstalmentPolicy(min_months=4, min_instalment_cents=1000))
    assert max_plan_months(3999, p) is None
    assert max_plan_months(4000, p) == 4


# --- The menu -------------------------------------------------------------------------------


def test_offers_menu_in_order() -> None:
    p = CreditorPolicy(
        discount_pct=10, settlement_min_pct=60, instalments=InstalmentPolicy(max_months=6)
    )
    menu = offers(100000, p, D("2026-03-02"))
    assert [(o.kind, o.months, o.total_cents) for o in menu] == [
        ("full", 1, 90000),
        ("settlement", 1, 60000),
        ("plan", 2, 100000),
        ("plan", 6, 100000),
    ]


def test_offers_dedupes_equal_plans_and_drops_a_settlement_that_costs_more() -> None:
    p = CreditorPolicy(discount_pct=50, settlement_min_pct=60, instalments=InstalmentPolicy())
    menu = offers(2500, p, D("2026-03-02"))
    assert [(o.kind, o.months, o.total_cents) for o in menu] == [
        ("full", 1, 1250),
        ("plan", 2, 2500),
    ]


def test_offers_full_payment_only() -> None:
    assert [o.kind for o in offers(1500, PLANS, D("2026-03-02"))] == ["full"]


def test_zero_balance_has_no_offers() -> None:
    assert offers(0, PLANS, D("2026-03-02")) == []


# --- Promises -------------------------------------------------------------------------------

PROMISES = CreditorPolicy(promise_max_days=30, promise_min_cents=2000)


def test_promise_limits_inclusive_and_saturday_is_fine() -> None:
    today = D("2026-03-02")
    check_promise(2000, today, 50000, PROMISES, today)
    check_promise(50000, D("2026-04-01"), 50000, PROMISES, today)
    check_promise(3000, D("2026-03-07"), 50000, PROMISES, today)  # a Saturday


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1999, "a promise must be between 20.00 and 500.00, got 19.99"),
        (50001, "a promise must be between 20.00 and 500.00, got 500.01"),
    ],
)
def test_promise_amount_out_of_range(amount: int, message: str) -> None:
    with pytest.raises(PlanError) as err:
        check_promise(amount, D("2026-03-10"), 50000, PROMISES, D("2026-03-02"))
    assert str(err.value) == message


@pytest.mark.parametrize("due", ["2026-03-01", "2026-04-02"])
def test_promise_date_out_of_range(due: str) -> None:
    with pytest.raises(PlanError) as err:
        check_promise(5000, D(due), 50000, PROMISES, D("2026-03-02"))
    assert str(err.value) == f"a promise date must be between 2026-03-02 and 2026-04-01, got {due}"


def test_a_balance_below_the_promise_minimum_can_be_promised_in_full() -> None:
    check_promise(1500, D("2026-03-10"), 1500, PROMISES, D("2026-03-02"))
    with pytest.raises(PlanError, match=r"between 15\.00 and 15\.00, got 14\.99$"):
        check_promise(1499, D("2026-03-10"), 1500, PROMISES, D("2026-03-02"))


# --- Confirmation codes ---------------------------------------------------------------------


def luhn_valid(code: str) -> bool:
    """Reference check, written independently: the weighted digit sum is a multiple of 10."""
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d // 10 + d % 10
    return total % 10 == 0


@pytest.mark.parametrize(
    ("n", "code"),
    [(0, "00000000"), (1, "00000018"), (1234567, "12345674"), (10**7 + 1, "00000018")],
)
def test_confirmation_code_values(n: int, code: str) -> None:
    assert confirmation_code(n) == code
    assert confirmation_code_ok(code)


@pytest.mark.parametrize("code", ["12345675", "1234567", "123456740", "1234567a", "١٢٣٤٥٦٧٤", ""])
def test_bad_confirmation_codes(code: str) -> None:
    assert not confirmation_code_ok(code)


@given(st.integers(min_value=0, max_value=10**12))
def test_every_code_is_luhn_valid_and_catches_one_wrong_digit(n: int) -> None:
    code = confirmation_code(n)
    assert len(code) == 8
    assert code[:7] == f"{n % 10**7:07d}"
    assert luhn_valid(code)
    assert confirmation_code_ok(code)
    for pos in range(8):
        for digit in "0123456789":
            if digit != code[pos]:
                assert not confirmation_code_ok(code[:pos] + digit + code[pos + 1 :])


# --- Properties -----------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@st.composite
def plan_cases(draw: st.DrawFn) -> tuple[int, int, CreditorPolicy, date, date | None]:
    min_months = draw(st.integers(2, 12))
    plans = InstalmentPolicy(
        min_months=min_months,
        max_months=draw(st.integers(min_months, 12)),
        min_instalment_cents=draw(st.integers(1, 50000)),
        first_within_days=draw(st.integers(1, 90)),
    )
    today = draw(days)
    # Sparse holidays around the plan, as real calendars have (a few a month at most).
    holidays = draw(
        st.frozensets(st.integers(0, 400).map(lambda k: today + timedelta(days=k)), max_size=12)
    )
    policy = CreditorPolicy(instalments=plans, holidays=holidays)
    balance = draw(st.integers(plans.min_instalment_cents * min_months, 10**9))
    most = max_plan_months(balance, policy)
    assert most is not None
    months = draw(st.integers(min_months, most))
    offset = draw(st.none() | st.integers(0, plans.first_within_days))
    first_due = None if offset is None else today + timedelta(days=offset)
    return balance, months, policy, today, first_due


@given(plan_cases())
def test_plan_properties(case: tuple[int, int, CreditorPolicy, date, date | None]) -> None:
    balance, months, policy, today, first_due = case
    assert policy.instalments is not None
    offer = instalment_plan(balance, months, policy, today, first_due)
    amounts = [i.amount_cents for i in offer.instalments]
    dues = [i.due for i in offer.instalments]
    assert sum(amounts) == offer.total_cents == balance
    assert len(amounts) == offer.months == months
    assert all(a >= policy.instalments.min_instalment_cents for a in amounts)
    assert len(set(amounts[:-1])) <= 1
    assert 0 <= amounts[-1] - amounts[0] < months
    assert all(earlier < later for earlier, later in pairwise(dues))
    assert all(is_business_day(d, policy.holidays) for d in dues)
    assert dues[0] > today if first_due is None else dues[0] >= first_due
    json = offer.to_json()
    assert sum(i["amount_cents"] for i in json["instalments"]) == balance  # type: ignore[union-attr]


@given(plan_cases())
def test_plan_is_refused_exactly_when_an_instalment_would_be_below_the_minimum(
    case: tuple[int, int, CreditorPolicy, date, date | None],
) -> None:
    balance, _, policy, today, first_due = case
    assert policy.instalments is not None
    most = max_plan_months(balance, policy)
    assert most is not None
    for months in range(policy.instalments.min_months, policy.instalments.max_months + 1):
        if months <= most:
            instalment_plan(balance, months, policy, today, first_due)
        else:
            with pytest.raises(PlanError, match="must be at least"):
                instalment_plan(balance, months, policy, today, first_due)


@given(days, st.frozensets(days, max_size=20))
def test_next_business_day_is_the_first_business_day_on_or_after(
    d: date, holidays: frozenset[date]
) -> None:
    result = next_business_day(d, holidays)
    assert result >= d
    assert result.weekday() < 5
    assert result not in holidays
    day = d
    while day < result:
        assert day.weekday() >= 5 or day in holidays
        day += timedelta(days=1)


@given(days, st.integers(-240, 240))
def test_add_months_properties(d: date, n: int) -> None:
    result = add_months(d, n)
    assert (result.year * 12 + result.month) - (d.year * 12 + d.month) == n
    assert result.day <= d.day
    if result.day < d.day:  # clamped: the result is its month's last day
        assert (result + timedelta(days=1)).day == 1


@given(
    st.integers(1, 10**9),
    st.integers(0, 99),
    st.none() | st.integers(1, 100),
    days,
)
def test_offer_properties(balance: int, discount: int, settle: int | None, today: date) -> None:
    p = CreditorPolicy(
        discount_pct=discount, settlement_min_pct=settle, instalments=PLANS.instalments
    )
    menu = offers(balance, p, today)
    assert menu[0].kind == "full"
    assert [o.kind for o in menu] == sorted(
        (o.kind for o in menu), key=["full", "settlement", "plan"].index
    )
    for offer in menu:
        assert 1 <= offer.total_cents <= balance
        assert offer.total_cents + offer.discount_cents == balance
        assert sum(i.amount_cents for i in offer.instalments) == offer.total_cents
    full = menu[0]
    assert full.total_cents == max(1, balance - (balance * discount + 99) // 100)
    for offer in menu[1:]:
        if offer.kind == "settlement":
            assert offer.total_cents < full.total_cents
            assert offer.total_cents * 100 >= balance * (settle or 0)
    plans = [o.months for o in menu if o.kind == "plan"]
    assert plans == sorted(set(plans))


def test_offer_rejects_instalments_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="do not add up"):
        Offer("full", 100, (Instalment(D("2026-03-02"), 99),))


def test_a_postal_code_factor_needs_digits_to_match() -> None:
    # The postal code on file is compared as its ASCII digits with what the caller keyed. One
    # with no such digits ('N/A', or fullwidth digits from a mis-encoded import) matches nothing:
    # before, 'N/A' gave '' and an empty entry would have matched it.
    from types import SimpleNamespace

    from ivr._actions import _factor_ok

    policy = SimpleNamespace(second_factor="postal_code")
    assert _factor_ok({"postal_code": "06000"}, policy, "06000")  # type: ignore[arg-type]
    assert _factor_ok({"postal_code": "CP 06000"}, policy, "06000")  # type: ignore[arg-type]
    for on_file in ("N/A", "\uff10\uff16\uff10\uff10\uff10"):
        assert not _factor_ok({"postal_code": on_file}, policy, "")  # type: ignore[arg-type]
    assert not _factor_ok({"postal_code": "\uff10\uff16\uff10\uff10\uff10"}, policy,  # type: ignore[arg-type]
                          "\uff10\uff16\uff10\uff10\uff10")  # fmt: skip
