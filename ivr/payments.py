"""PCI-safe card handling for payments taken by DTMF: checks, masked values, gateways.

Card digits and CVVs live only inside :class:`SecretDigits` / :class:`CardNumber`, whose
``repr``, ``str`` and ``format`` are masks and which refuse to be pickled or copied. Nothing in
this module puts digits in a log, an exception message or a persisted value; only a gateway
calls :meth:`SecretDigits.reveal`, and only to send the digits to the processor.

The checks (:func:`check_card`, :func:`parse_expiry`, :func:`check_cvv`) are pure; ``today`` is
an argument. Gateways are the adapters: they log (keys, amounts, brands; never card data).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

from ivr._exceptions import CardError, GatewayUnavailable, IvrError

log = logging.getLogger(__name__)

PAN_MIN_DIGITS = 12
PAN_MAX_DIGITS = 19
EXPIRY_MAX_YEARS_AHEAD = 20  # further than this is a keying mistake, not a real card

# IIN prefix ranges (inclusive); a range's prefix length is the length of its bounds.
_BRAND_PREFIXES: dict[str, tuple[tuple[int, int], ...]] = {
    "amex": ((34, 34), (37, 37)),
    "visa": ((4, 4),),
    "mastercard": ((51, 55), (2221, 2720)),
    "discover": ((6011, 6011), (622126, 622925), (644, 649), (65, 65)),
    "jcb": ((3528, 3589),),
    "diners": ((300, 305), (3095, 3095), (36, 36), (38, 39)),
}


def _all_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts '²' and Arabic-Indic digits)."""
    return bool(text) and text.isascii() and text.isdigit()


class SecretDigits:
    """A string of digits (a CVV, a PAN) that never shows itself.

    ``repr``/``str``/``format`` give a mask, pickling and copying raise ``TypeError`` (so it
    cannot slip into a queue, a cache or ``dataclasses.asdict``), and it is immutable.
    Equality is constant-time; instances are unhashable. :meth:`reveal` is for gateways only.
    """

    __slots__ = ("_digits",)
    _kind = "secret"  # names the value in error messages

    def __init__(self, digits: str) -> None:
        if not isinstance(digits, str) or not _all_digits(digits):
            raise CardError("not_digits", f"{self._kind} must contain only the digits 0-9")
        object.__setattr__(self, "_digits", digits)

    def reveal(self) -> str:
        """The digits. Call this only to hand them to a payment processor."""
        return self._digits

    def _mask(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._mask()})"

    def __str__(self) -> str:
        return self._mask()

    def __format__(self, spec: str) -> str:
        return format(self._mask(), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretDigits) or type(other) is not type(self):
            return NotImplemented
        return hmac.compare_digest(self._digits, other._digits)

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce_ex__(self, protocol: Any = None) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled or copied")

    __reduce__ = __reduce_ex__


class CardNumber(SecretDigits):
    """A primary account number: 12-19 ASCII digits (no Luhn check; see :func:`check_card`).

    Shows as ``CardNumber(****4242)`` in ``repr`` and ``****4242`` in ``str``/f-strings.
    """

    __slots__ = ()
    _kind = "card number"

    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS:
            raise CardError(
                "bad_length",
                f"card number must be {PAN_MIN_DIGITS} to {PAN_MAX_DIGITS} digits, "
                f"got {len(digits)}",
            )

    def _mask(self) -> str:
        return "****" + self.last4

    @property
    def last4(self) -> str:
        return self._digits[-4:]

    @property
    def brand(self) -> str:
        return brand_of(self._digits)


def luhn_ok(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only) passes the Luhn mod-10 check."""
    if not _all_digits(digits):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand_of(digits: str) -> str:
    """The card brand from the IIN prefix: visa, mastercard, amex, discover, diners, jcb or
    ``unknown`` (also for anything that is not ASCII digits)."""
    if not _all_digits(digits):
        return "unknown"
    for brand, ranges in _BRAND_PREFIXES.items():
        for low, high in ranges:
            if low <= int(digits[: len(str(low))]) <= high:
                return brand
    return "unknown"


def check_card(number: str) -> CardNumber:
    """Validate keyed digits as a card number: digits only, 12-19 long, Luhn-valid.

    Raises :class:`CardError` with reason ``not_digits``, ``bad_length`` or ``luhn``; the
    message never contains the digits.
    """
    card = CardNumber(number)
    if not luhn_ok(card.reveal()):
        raise CardError("luhn", "card number failed the Luhn check (a digit is probably wrong)")
    return card


@dataclass(frozen=True)
class Expiry:
    """A card's expiry month; the card is valid through the last day of that month."""

    month: int
    year: int  # four digits

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise CardError("bad_expiry", "expiry month must be 01 to 12")
        if not 2000 <= self.year <= 2099:
            raise CardError("bad_expiry", "expiry year must be 2000 to 2099")

    def is_expired(self, today: date) -> bool:
        return (self.year, self.month) < (today.year, today.month)


def parse_expiry(mmyy: str, today: date) -> Expiry:
    """Parse four DTMF digits ``MMYY`` (year 20YY) and reject expired or implausible dates.

    Raises :class:`CardError` ``bad_expiry`` (not MMYY, month outside 01-12, more than
    ``EXPIRY_MAX_YEARS_AHEAD`` years ahead) or ``expired`` (before ``today``'s month).
    """
    if not (len(mmyy) == 4 and _all_digits(mmyy)):
        raise CardError("bad_expiry", "expiry must be four digits, MMYY")
    expiry = Expiry(month=int(mmyy[:2]), year=2000 + int(mmyy[2:]))
    if expiry.is_expired(today):
        raise CardError("expired", "the card has expired")
    if expiry.year > today.year + EXPIRY_MAX_YEARS_AHEAD:
        raise CardError("bad_expiry", "expiry year is too far in the future")
    return expiry


def check_cvv(cvv: str, brand: str) -> SecretDigits:
    """Validate a CVV (4 digits for amex, 3 otherwise) and wrap it so it never shows.

    Raises :class:`CardError` ``bad_cvv``; the message never contains the digits.
    """
    length = 4 if brand == "amex" else 3
    if len(cvv) != length or not _all_digits(cvv):
        raise CardError("bad_cvv", f"security code must be {length} digits for {brand} cards")
    return SecretDigits(cvv)


@dataclass(frozen=True, repr=False)
class ChargeRequest:
    """One charge to send to a gateway; ``repr`` masks the card, expiry and CVV.

    Not picklable, copyable or ``asdict``-able (the card refuses), so it is never persisted by
    accident; persist the idempotency key, amount, brand and last4 instead.
    """

    idempotency_key: str
    amount_cents: int
    currency: str
    card: CardNumber
    expiry: Expiry
    cvv: SecretDigits

    def __post_init__(self) -> None:
        if not isinstance(self.idempotency_key, str) or not self.idempotency_key:
            raise ValueError("idempotency_key must be a non-empty string")
        if isinstance(self.amount_cents, bool) or not isinstance(self.amount_cents, int):
            raise ValueError("amount_cents must be an int")
        if self.amount_cents <= 0:
            raise ValueError(f"amount_cents must be > 0, got {self.amount_cents}")
        cur = self.currency
        if not (isinstance(cur, str) and len(cur) == 3 and cur.isascii() and cur.isupper()):
            raise ValueError("currency must be three upper-case letters (ISO 4217)")
        if not isinstance(self.card, CardNumber):
            raise TypeError("card must be a CardNumber (see check_card)")
        if not isinstance(self.expiry, Expiry):
            raise TypeError("expiry must be an Expiry (see parse_expiry)")
        if type(self.cvv) is not SecretDigits:
            raise TypeError("cvv must be a SecretDigits (see check_cvv)")

    def __repr__(self) -> str:
        return (
            f"ChargeRequest(idempotency_key={self.idempotency_key!r}, "
            f"amount_cents={self.amount_cents}, currency={self.currency!r}, "
            f"card={self.card!r}, expiry=**/**, cvv=***)"
        )


@dataclass(frozen=True)
class ChargeResult:
    """A gateway's answer. Safe to log and persist: no card digits, only brand and last4."""

    status: Literal["approved", "declined"]
    gateway_ref: str
    token: str | None
    brand: str
    last4: str
    decline_reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("approved", "declined"):
            raise ValueError(f"status must be 'approved' or 'declined', got {self.status!r}")

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@runtime_checkable
class PaymentGateway(Protocol):
    """A payment processor.

    ``charge`` raises :class:`GatewayUnavailable` when it did not charge (down, a processing
    error; the caller may retry with the same request). An answer that does not come in time is
    the caller's deadline: the charge may have been made, so its outcome is unknown and only a
    repeat with the same key may ask for it. Idempotency contract: the same
    ``idempotency_key`` never charges twice; a repeat returns the first result; a repeat with
    another amount, currency or card raises :class:`IvrError` (key reuse).
    """

    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The result of the charge made under ``idempotency_key``; None if the gateway never
        charged under it. Raises :class:`GatewayUnavailable` when it cannot say. Used to settle
        a payment whose answer never came (no card data needed)."""
        ...


@dataclass(frozen=True)
class _Record:
    request_fingerprint: str
    result: ChargeResult


class SandboxGateway(PaymentGateway):
    """An in-memory gateway for tests and demos: no network, deterministic by card number.

    Outcome by card number:

    4242424242424242       approved (visa)
    5555555555554444       approved (mastercard)
    378282246310005        approved (amex)
    4000000000000002       declined ``card_declined``
    4000000000009995       declined ``insufficient_funds``
    4000000000000069       declined ``expired_card``
    4000000000000119       raises GatewayUnavailable (processing error), not charged
    any other Luhn-valid   approved

    Refs and tokens derive from the idempotency key only (``ch_``/``tok_`` + sha256 prefix).
    The charge is decided and recorded before the ``delay_s`` wait, like a processor whose answer
    is lost in transit: a caller that times out and retries with the same key gets the recorded
    result and ``charges`` does not move. ``charges`` counts requests processed (approved or
    declined), repeats excluded. ``down = True`` makes every call raise GatewayUnavailable.
    At most ``max_records`` keys are kept; past that ``charge`` raises :class:`IvrError`.
    """

    name = "sandbox"

    _OUTCOMES: dict[str, str] = {
        "4000000000000002": "card_declined",
        "4000000000009995": "insufficient_funds",
        "4000000000000069": "expired_card",
    }
    _PROCESSING_ERROR = "4000000000000119"

    def __init__(self, *, delay_s: float = 0.0, max_records: int = 10_000) -> None:
        self.delay_s = delay_s
        self.down = False
        self.charges = 0
        self.max_records = max_records
        self._records: dict[str, _Record] = {}
        # Keyed fingerprints let a repeat be compared without keeping the digits around.
        self._fingerprint_key = secrets.token_bytes(32)

    def _fingerprint(self, request: ChargeRequest) -> str:
        mac = hmac.new(self._fingerprint_key, digestmod=hashlib.sha256)
        mac.update(f"{request.amount_cents}|{request.currency}|".encode())
        mac.update(request.card.reveal().encode())
        return mac.hexdigest()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        key = request.idempotency_key
        if self.down:
            log.warning("sandbox gateway down key=%s", key[:12])
            raise GatewayUnavailable("sandbox gateway is down")
        fingerprint = self._fingerprint(request)
        record = self._records.get(key)
        if record is not None:
            if not hmac.compare_digest(record.request_fingerprint, fingerprint):
                raise IvrError(
                    "idempotency key reused for a different charge (amount, currency or card)"
                )
            log.info("sandbox charge repeat key=%s status=%s", key[:12], record.result.status)
            result = record.result
        else:
            result = self._process(request)
            self._records[key] = _Record(fingerprint, result)
            self.charges += 1
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        return result

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        if self.down:
            raise GatewayUnavailable("sandbox gateway is down")
        record = self._records.get(idempotency_key)
        return record.result if record is not None else None

    def _process(self, request: ChargeRequest) -> ChargeResult:
        key = request.idempotency_key
        card = request.card
        pan = card.reveal()
        if pan == self._PROCESSING_ERROR:
            log.warning("sandbox processing error key=%s brand=%s", key[:12], card.brand)
            raise GatewayUnavailable("sandbox processing error, nothing was charged")
        if len(self._records) >= self.max_records:
            raise IvrError(f"sandbox gateway holds {self.max_records} records; make a new one")
        digest = hashlib.sha256(key.encode()).hexdigest()
        decline_reason = self._OUTCOMES.get(pan)
        result = ChargeResult(
            status="declined" if decline_reason else "approved",
            gateway_ref="ch_" + digest[:16],
            token=None if decline_reason else "tok_" + digest[16:32],
            brand=card.brand,
            last4=card.last4,
            decline_reason=decline_reason,
        )
        log.info(
            "sandbox charge key=%s amount_cents=%d currency=%s brand=%s status=%s reason=%s",
            key[:12],
            request.amount_cents,
            request.currency,
            result.brand,
            result.status,
            decline_reason,
        )
        return result


def idempotency_key(session_id: str, debt_id: int, amount_cents: int, attempt: int = 0) -> str:
    """A stable key for one payment step: the same session, debt, amount and attempt give the
    same key, so retrying that step can never charge twice. Bump ``attempt`` for a new try
    the caller has decided to make (after a decline, say). 64 hex characters."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    parts = json.dumps(["puente-pay-v1", session_id, debt_id, amount_cents, attempt])
    return hashlib.sha256(parts.encode()).hexdigest()
