"""Card checks, masking, and the sandbox gateway's table and idempotency contract."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import pickle
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr._exceptions import CardError, GatewayUnavailable, IvrError
from ivr.payments import (
    CardNumber,
    ChargeRequest,
    ChargeResult,
    Expiry,
    PaymentGateway,
    SandboxGateway,
    SecretDigits,
    brand_of,
    check_card,
    check_cvv,
    idempotency_key,
    luhn_ok,
    parse_expiry,
)

VISA = "4242424242424242"
TODAY = date(2025, 6, 15)
CVV = "739"


def make_request(
    pan: str = VISA,
    *,
    amount_cents: int = 12_50,
    key: str | None = None,
    cvv: str | None = None,
) -> ChargeRequest:
    card = check_card(pan)
    return ChargeRequest(
        idempotency_key=key or idempotency_key("sess-1", 42, amount_cents),
        amount_cents=amount_cents,
        currency="USD",
        card=card,
        expiry=parse_expiry("1228", TODAY),
        cvv=check_cvv(cvv or ("7391" if card.brand == "amex" else CVV), card.brand),
    )


# --- Luhn and brands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pan",
    [
        VISA,
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3056930009020004",
        "3566002020360505",
        "2223003122003222",
        "4000000000000002",
        "4111111111111111",
    ],
)
def test_luhn_accepts_known_test_numbers(pan: str) -> None:
    assert luhn_ok(pan)


@pytest.mark.parametrize(
    "text", ["4242424242424241", "4111111111111112", "", "4242 4242 4242 4242", "٤٢٤٢"]
)
def test_luhn_rejects_bad_numbers_and_non_digits(text: str) -> None:
    assert not luhn_ok(text)


@given(st.text(alphabet="0123456789", min_size=11, max_size=18), st.integers(0, 9))
def test_luhn_has_exactly_one_check_digit(body: str, wrong: int) -> None:
    good = [d for d in "0123456789" if luhn_ok(body + d)]
    assert len(good) == 1
    if str(wrong) != good[0]:
        assert not luhn_ok(body + str(wrong))


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        (VISA, "visa"),
        ("4222222222222", "visa"),
        ("5555555555554444", "mastercard"),
        ("5105105105105100", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720990000000007", "mastercard"),
        ("2220990000000000", "unknown"),
        ("2721000000000000", "unknown"),
        ("378282246310005", "amex"),
        ("341111111111111", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("6500000000000002", "discover"),
        ("6221260000000000", "discover"),
        ("30569309025904", "diners"),
        ("38520000023237", "diners"),
        ("3566002020360505", "jcb"),
        ("9999999999999995", "unknown"),
        ("12ab", "unknown"),
        ("", "unknown"),
    ],
)
def test_brand_of(pan: str, brand: str) -> None:
    assert brand_of(pan) == brand


# --- check_card and CardNumber ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("42424242424", "bad_length"),
        ("42424242424242424242", "bad_length"),
        ("4242-4242-4242-4242", "not_digits"),
        ("4242\uff14\uff12\uff14\uff1242424242", "not_digits"),
        ("", "not_digits"),
        ("4242424242424241", "luhn"),
    ],
)
def test_check_card_rejects_without_echoing_digits(text: str, reason: str) -> None:
    with pytest.raises(CardError) as info:
        check_card(text)
    assert info.value.reason == reason
    shown = str(info.value) + repr(info.value)
    assert text not in shown or not text
    assert "4242" not in shown


def test_card_number_is_masked_everywhere() -> None:
    card = check_card(VISA)
    assert isinstance(card, CardNumber)
    assert repr(card) == "CardNumber(****4242)"
    assert str(card) == "****4242"
    assert f"{card}" == "****4242"
    assert f"{card:>10}" == "  ****4242"
    brace, percent = "{!r} {}", "%s %r"
    assert brace.format(card, card) == "CardNumber(****4242) ****4242"
    assert percent % (card, card) == "****4242 CardNumber(****4242)"
    for shown in (repr(card), str(card), f"{card}", f"{card!r}", repr([card]), str({"c": card})):
        assert VISA not in shown
    assert card.last4 == "4242"
    assert card.brand == "visa"
    assert card.reveal() == VISA


def test_card_number_has_no_dict_and_is_immutable() -> None:
    card = check_card(VISA)
    assert not hasattr(card, "__dict__")
    with pytest.raises(AttributeError):
        card._digits = "4111111111111111"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        card.extra = 1  # type: ignore[attr-defined]


def test_card_number_equality_and_no_hash() -> None:
    assert check_card(VISA) == check_card(VISA)
    assert check_card(VISA) != check_card("4111111111111111")
    assert check_card(VISA) != VISA
    with pytest.raises(TypeError):
        hash(check_card(VISA))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secrets_refuse_pickling(protocol: int) -> None:
    for secret in (check_card(VISA), check_cvv(CVV, "visa")):
        with pytest.raises(TypeError) as info:
            pickle.dumps(secret, protocol=protocol)
        assert VISA not in str(info.value)


def test_secrets_refuse_copying_and_asdict() -> None:
    request = make_request()
    with pytest.raises(TypeError):
        copy.copy(request.card)
    with pytest.raises(TypeError):
        copy.deepcopy(request)
    with pytest.raises(TypeError):
        dataclasses.asdict(request)
    with pytest.raises(TypeError):
        pickle.dumps(request)


# --- expiry and CVV --------------------------------------------------------------------------


def test_expiry_this_month_is_valid_through_its_end() -> None:
    assert parse_expiry("0625", date(2025, 6, 30)) == Expiry(month=6, year=2025)
    assert parse_expiry("0625", date(2025, 6, 1)) == Expiry(6, 2025)


@pytest.mark.parametrize(
    ("mmyy", "today"),
    [("0525", date(2025, 6, 1)), ("1224", date(2025, 1, 1)), ("0625", date(2025, 7, 1))],
)
def test_expiry_before_this_month_is_expired(mmyy: str, today: date) -> None:
    with pytest.raises(CardError) as info:
        parse_expiry(mmyy, today)
    assert info.value.reason == "expired"


@pytest.mark.parametrize("mmyy", ["1325", "0025", "625", "06255", "06/25", "ab25", "", "0699"])
def test_bad_expiry(mmyy: str) -> None:
    with pytest.raises(CardError) as info:
        parse_expiry(mmyy, TODAY)
    assert info.value.reason == "bad_expiry"


def test_expiry_december_rolls_over_the_year() -> None:
    assert parse_expiry("1225", date(2025, 12, 31)) == Expiry(12, 2025)
    assert Expiry(12, 2025).is_expired(date(2026, 1, 1))


@pytest.mark.parametrize(
    ("cvv", "brand", "ok"),
    [
        ("123", "visa", True),
        ("123", "unknown", True),
        ("1234", "amex", True),
        ("1234", "visa", False),
        ("123", "amex", False),
        ("12", "mastercard", False),
        ("12a", "visa", False),
        ("", "visa", False),
    ],
)
def test_cvv_length_by_brand(cvv: str, brand: str, ok: bool) -> None:
    if ok:
        secret = check_cvv(cvv, brand)
        assert type(secret) is SecretDigits
        assert secret.reveal() == cvv
        assert cvv not in repr(secret) + str(secret) + f"{secret}"
        assert repr(secret) == "SecretDigits(***)"
    else:
        with pytest.raises(CardError) as info:
            check_cvv(cvv, brand)
        assert info.value.reason == "bad_cvv"
        assert not cvv or cvv not in str(info.value)


# --- ChargeRequest / ChargeResult -------------------------------------------------------------


def test_charge_request_repr_is_masked() -> None:
    request = make_request()
    shown = repr(request) + str(request) + f"{request}"
    assert VISA not in shown
    assert CVV not in shown
    assert "1228" not in shown
    assert "CardNumber(****4242)" in shown
    assert "amount_cents=1250" in shown


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("amount_cents", 0, ValueError),
        ("amount_cents", -5, ValueError),
        ("amount_cents", 1.5, ValueError),
        ("amount_cents", True, ValueError),
        ("currency", "usd", ValueError),
        ("currency", "US", ValueError),
        ("idempotency_key", "", ValueError),
        ("card", VISA, TypeError),
        ("cvv", CVV, TypeError),
    ],
)
def test_charge_request_validates(field: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        dataclasses.replace(make_request(), **{field: value})
    assert VISA not in str(info.value)
    assert CVV not in str(info.value)


def test_charge_result_status_is_checked() -> None:
    with pytest.raises(ValueError):
        ChargeResult("pending", "ch_1", None, "visa", "4242")  # type: ignore[arg-type]


# --- idempotency keys -------------------------------------------------------------------------


def test_idempotency_key_is_stable_and_distinct() -> None:
    key = idempotency_key("sess-1", 42, 1250)
    assert key == idempotency_key("sess-1", 42, 1250, attempt=0)
    assert len(key) == 64
    assert int(key, 16) >= 0
    others = {
        idempotency_key("sess-2", 42, 1250),
        idempotency_key("sess-1", 43, 1250),
        idempotency_key("sess-1", 42, 1251),
        idempotency_key("sess-1", 42, 1250, attempt=1),
        idempotency_key("sess-1|42", 1250, 0),
    }
    assert key not in others
    assert len(others) == 5
    with pytest.raises(ValueError):
        idempotency_key("sess-1", 42, 1250, attempt=-1)


# --- SandboxGateway --------------------------------------------------------------------------


def test_sandbox_is_a_payment_gateway() -> None:
    assert isinstance(SandboxGateway(), PaymentGateway)
    assert SandboxGateway().name == "sandbox"


@pytest.mark.parametrize(
    ("pan", "status", "reason", "brand"),
    [
        (VISA, "approved", None, "visa"),
        ("5555555555554444", "approved", None, "mastercard"),
        ("378282246310005", "approved", None, "amex"),
        ("4000000000000002", "declined", "card_declined", "visa"),
        ("4000000000009995", "declined", "insufficient_funds", "visa"),
        ("4000000000000069", "declined", "expired_card", "visa"),
        ("6011111111111117", "approved", None, "discover"),
    ],
)
async def test_sandbox_table(pan: str, status: str, reason: str | None, brand: str) -> None:
    gateway = SandboxGateway()
    result = await gateway.charge(make_request(pan))
    assert (result.status, result.decline_reason, result.brand) == (status, reason, brand)
    assert result.last4 == pan[-4:]
    assert result.approved == (status == "approved")
    assert (result.token is not None) == result.approved
    assert result.gateway_ref.startswith("ch_")
    assert pan not in repr(result)
    assert gateway.charges == 1


async def test_sandbox_processing_error_is_unavailable_and_not_charged() -> None:
    gateway = SandboxGateway()
    with pytest.raises(GatewayUnavailable) as info:
        await gateway.charge(make_request("4000000000000119"))
    assert "4000000000000119" not in str(info.value)
    assert gateway.charges == 0


async def test_sandbox_refs_derive_from_key_only() -> None:
    first = await SandboxGateway().charge(make_request(key="k1"))
    again = await SandboxGateway().charge(make_request("5555555555554444", key="k1"))
    other = await SandboxGateway().charge(make_request(key="k2"))
    assert first.token is not None
    assert first.token.startswith("tok_")
    assert (first.token, first.gateway_ref) == (again.token, again.gateway_ref)
    assert first.token != other.token
    assert first.gateway_ref != other.gateway_ref


async def test_sandbox_repeat_returns_first_result_without_charging() -> None:
    gateway = SandboxGateway()
    first = await gateway.charge(make_request())
    second = await gateway.charge(make_request())
    assert second == first
    assert gateway.charges == 1
    declined = await gateway.charge(make_request("4000000000000002", key="d"))
    assert await gateway.charge(make_request("4000000000000002", key="d")) == declined
    assert gateway.charges == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"amount_cents": 99_99},
        {"pan": "5555555555554444"},
    ],
)
async def test_sandbox_key_reuse_for_another_charge_raises(changed: dict[str, object]) -> None:
    gateway = SandboxGateway()
    await gateway.charge(make_request(key="same"))
    with pytest.raises(IvrError) as info:
        await gateway.charge(make_request(key="same", **changed))  # type: ignore[arg-type]
    assert not isinstance(info.value, GatewayUnavailable)
    assert "reused" in str(info.value)
    assert VISA not in str(info.value)
    assert gateway.charges == 1


async def test_sandbox_down_raises_and_recovers() -> None:
    gateway = SandboxGateway()
    gateway.down = True
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(make_request())
    assert gateway.charges == 0
    gateway.down = False
    assert (await gateway.charge(make_request())).approved
    assert gateway.charges == 1


async def test_sandbox_timeout_then_retry_with_same_key_charges_once() -> None:
    gateway = SandboxGateway(delay_s=5.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await gateway.charge(make_request())
    assert gateway.charges == 1  # the answer was lost, not the charge
    gateway.delay_s = 0.0
    result = await gateway.charge(make_request())
    assert result.approved
    assert gateway.charges == 1


async def test_sandbox_concurrent_repeats_charge_once() -> None:
    gateway = SandboxGateway(delay_s=0.01)
    results = await asyncio.gather(*(gateway.charge(make_request()) for _ in range(5)))
    assert len(set(results)) == 1
    assert gateway.charges == 1


async def test_sandbox_store_is_bounded_and_fails_loudly() -> None:
    gateway = SandboxGateway(max_records=2)
    await gateway.charge(make_request(key="a"))
    await gateway.charge(make_request(key="b"))
    await gateway.charge(make_request(key="a"))  # a repeat still answers
    with pytest.raises(IvrError):
        await gateway.charge(make_request(key="c"))
    assert gateway.charges == 2


async def test_no_card_data_in_logs_during_a_full_flow(caplog: pytest.LogCaptureFixture) -> None:
    """Everything a payment step logs, including tracebacks, is free of PANs and CVVs."""
    amex, amex_cvv = "378282246310005", "7391"
    app_log = logging.getLogger("puente.test.payments")
    gateway = SandboxGateway()
    pans = [VISA, amex, "4000000000009995", "4000000000000119", "4242424242424241"]
    with caplog.at_level(logging.DEBUG):
        for n, pan in enumerate(pans):
            try:
                card = check_card(pan)
                cvv = check_cvv(amex_cvv if card.brand == "amex" else CVV, card.brand)
                request = ChargeRequest(
                    idempotency_key=idempotency_key("sess-9", n, 1000),
                    amount_cents=1000,
                    currency="USD",
                    card=card,
                    expiry=parse_expiry("1228", TODAY),
                    cvv=cvv,
                )
                app_log.debug("charging %r card=%s cvv=%s", request, card, cvv)
                app_log.info(f"charging {request} {card} {card!r} {cvv}")
                result = await gateway.charge(request)
                app_log.info("result %r", result)
                await gateway.charge(request)
            except IvrError:
                app_log.exception("payment step failed")
        gateway.down = True
        try:
            await gateway.charge(request)
        except GatewayUnavailable:
            app_log.exception("gateway down for %r", request)
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "sandbox charge" in text
    assert "payment step failed" in text
    assert "Traceback" in text
    for secret in [*pans, CVV, amex_cvv, "1228"]:
        assert secret not in text, secret
