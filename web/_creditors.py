"""Creditors: list, create and edit (admin and supervisor); ``puente creditors`` uses the same.

A creditor row is what the debtor hears and what the IVR offers, so each value is checked as
its readers will use it, and refused (422, the field named) rather than said wrong on a call:

- ``public_name`` is the business name said to debtors (the ``company_<code>`` prompt, the
  voicemail's limited-content message, the screen pop). Under Reg F (12 CFR 1006.2(j),
  1006.18(b)(1)) it must not indicate debt collection: a name containing a word such as
  "collect", "debt", "cobranza", "cobro", "deuda", "recupero" or "recovery" is refused
  (:func:`collection_words`), accents and case ignored.
- ``callback_number`` is a valid E.164 number (``phonenumbers``), stored as E.164. The IVR
  picks the creditor of an inbound call by the number dialed (``ivr/_actions.py``,
  ``inbound_lookup``), so two creditors cannot share one: a 409 names the other.
- ``currency`` is an ISO 4217 code of a currency in circulation (upper case stored).
- ``contact_name``: the person the voicemail asks for (without one no limited-content message
  is left, see ``dialer/campaigns.py``); optional, one line.
- ``policy`` is the IVR's and the desktop's arrangement policy, validated by
  :meth:`ivr.plans.CreditorPolicy.from_json` (the field named: ``policy.instalments.max_months``).
- ``agency`` (optional; null: the creditor collects in-house) is the collection agency that
  collects for it, as registered in CONDUSEF's REDECO: ``name``, ``address``, ``phone``
  (E.164, stored so), ``email`` and the ``responsible`` persons. At the first contact with a
  Mexican debtor the agent must give them, with the entity that granted the credit and the
  contract (CONDUSEF's rules for collection agencies): the screen pop words it
  (``identify_first``, web/_screenpop.py).

An edit checks the fields it changes; ``policy`` is replaced whole. Every change is audited.
After changing ``public_name`` or ``contact_name``, regenerate the prompts (``puente ivr
prompts``): the recorded name is what callers hear.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import asyncpg

from ivr._exceptions import PolicyError
from ivr.plans import CreditorPolicy
from web._agents import ONE_LINE
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._campaigns import MANAGERS
from web._exceptions import Conflict, Invalid, NotFound
from web._schema import CODE, E164, validate
from web._values import jsonb, object_schema, valid_e164

# ISO 4217 codes of currencies in circulation (not funds, metals, SDRs or test codes).
_CURRENCY_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
CURRENCIES = frozenset(_CURRENCY_CODES.split())

# Words that say debt collection, in English and Spanish, matched in the name cased and
# stripped of accents ("Cobranzas del Norte", "Acme Recovery", "DebtCo", "Recuperación MX").
_COLLECTION_WORDS = re.compile(
    r"collect|debt|recover|arrear|delinquen"
    r"|cobranz|cobrador|cobrar|\bcobros?\b|deud|recuper|moros|impag"
)

_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": ONE_LINE}
_FIELDS: dict[str, dict[str, Any]] = {
    "name": {**_NAME, "description": "the creditor's own name (not said to debtors)"},
    "public_name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "pattern": ONE_LINE,
        "description": "the business name said to debtors; must not indicate debt collection",
    },
    "callback_number": {**E164, "description": "the number debtors call back (E.164)"},
    "currency": {"type": "string", "pattern": r"^[A-Za-z]{3}$", "description": "ISO 4217"},
    "contact_name": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": 100,
        "pattern": ONE_LINE,
        "description": "the person the voicemail message asks for (none: no message is left)",
    },
    "agency": {
        "type": ["object", "null"],
        "properties": {
            "name": {**_NAME, "description": "the agency's name or corporate name"},
            "address": {**_NAME, "maxLength": 300, "description": "its address"},
            "phone": {**E164, "description": "the number it collects from (E.164)"},
            "email": {
                "type": "string",
                "maxLength": 254,
                "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                "description": "its e-mail address",
            },
            "responsible": {**_NAME, "description": "the persons responsible for collection"},
        },
        "required": ["name", "address", "phone", "email", "responsible"],
        "additionalProperties": False,
        "description": "the collection agency that collects for this creditor, as registered "
        "in REDECO (Mexico); null: collected in-house",
    },
    "policy": {
        "type": "object",
        "description": "the arrangement policy: second_factor, discount_pct, discount_until, "
        "settlement_min_pct, instalments, promise_max_days, promise_min_cents, "
        "max_verify_failures, lockout_minutes, holidays, disclosure (README, IVR)",
    },
}
# (no default currency: the table's, USD, would have a Mexican creditor's balances said in
# dollars)
_DEFAULTS: dict[str, Any] = {"contact_name": None, "agency": None, "policy": {}}
_JSONB = frozenset({"policy", "agency"})
CREATE_BODY = object_schema(
    {"code": CODE, **_FIELDS}, ("code", "name", "public_name", "callback_number", "currency")
)
EDIT_BODY = object_schema(dict(_FIELDS))
_COLUMNS = list(_FIELDS)
_POLICY_FIELD = re.compile(r"^creditor '.*?': (policy(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*)")


def collection_words(name: str) -> list[str]:
    """The words of ``name`` that say debt collection (empty: none)."""
    decomposed = unicodedata.normalize("NFKD", name)
    # (Accents go, and so do invisible format characters: a soft hyphen or a zero-width space
    # inside a word hid it from the check, not from the listener.)
    plain = "".join(
        c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    ).casefold()
    words = re.findall(r"\w+", plain)
    return [w for w in words if _COLLECTION_WORDS.search(w)]


def check_public_name(name: str) -> None:
    found = collection_words(name)
    if found:
        raise Invalid(
            f"public_name: {', '.join(repr(w) for w in found)} would tell whoever hears it that "
            "the call is about a debt (Reg F, 12 CFR 1006.2(j) and 1006.18(b)(1)): use a "
            "business name that does not indicate debt collection",
            "public_name",
        )


def callback_e164(number: str, field: str = "callback_number") -> str:
    """``number`` as E.164 if it is a valid phone number (:class:`Invalid` on ``field``
    otherwise)."""
    e164 = valid_e164(number)
    if e164 is None:
        # (not the number: it may be somebody's, and the message may reach a log)
        raise Invalid(f"{field}: not a valid phone number for its country code", field)
    return e164


def check_policy(code: str, policy: Any) -> None:
    try:
        CreditorPolicy.from_json(policy, creditor=code)
    except PolicyError as e:
        m = _POLICY_FIELD.match(str(e))
        raise Invalid(str(e), m[1] if m else "policy") from None


def checked(code: str, values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (a body of ``schema``) checked as the creditor's readers need it and
    normalised: the call-back number as E.164, the currency upper case."""
    validate(schema, values)
    out = dict(values)
    if "public_name" in out:
        check_public_name(out["public_name"])
    if "callback_number" in out:
        out["callback_number"] = callback_e164(out["callback_number"])
    if "currency" in out:
        out["currency"] = out["currency"].upper()
        if out["currency"] not in CURRENCIES:
            raise Invalid(f"currency: {out['currency']!r} is not an ISO 4217 currency in "
                          "circulation", "currency")  # fmt: skip
    if "policy" in out:
        check_policy(code, out["policy"])
    if out.get("agency") is not None:
        out["agency"] = {
            **out["agency"],
            "phone": callback_e164(out["agency"]["phone"], "agency.phone"),
        }
    return out


def creditor_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "public_name": row["public_name"],
        "callback_number": row["callback_number"],
        "currency": row["currency"].strip(),
        "contact_name": row["contact_name"],
        "agency": jsonb(row["agency"]),
        "policy": jsonb(row["policy"]),
        "created_at": row["created_at"],
    }


async def _number_free(conn: asyncpg.Connection, number: str, code: str) -> None:
    """The IVR picks the creditor of an inbound call by the digits dialed: one per number."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('creditors.callback_number'))")
    other = await conn.fetchval(
        "SELECT code FROM creditors WHERE code <> $2"
        " AND regexp_replace(callback_number, '[^0-9]', '', 'g') = $1 ORDER BY id LIMIT 1",
        re.sub(r"[^0-9]", "", number),
        code,
    )
    if other is not None:
        raise Conflict(
            f"callback_number: creditor {other!r} has this number; inbound callers to it are "
            "greeted as that creditor's (the IVR picks the creditor by the number dialed): "
            "give each creditor its own",
            "callback_number",
        )


async def _fetch(conn: asyncpg.Connection | asyncpg.Pool, code: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM creditors WHERE code = $1", code)
    if row is None:
        raise NotFound(f"no creditor {code!r}")
    return row


async def creditor_rows(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    return [creditor_json(r) for r in await conn.fetch("SELECT * FROM creditors ORDER BY code")]


def _db(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSONB and value is not None else value


def _cast(column: str, i: int) -> str:
    return f"${i}::jsonb" if column in _JSONB else f"${i}"


async def add_creditor(
    pool: asyncpg.Pool, values: Mapping[str, Any], *, actor: str
) -> dict[str, Any]:
    """Create a creditor from ``values`` (:data:`CREATE_BODY`); the row as the API shows it.
    :class:`Invalid` naming the field; :class:`Conflict` for a code or a call-back number
    taken."""
    code = values.get("code") if isinstance(values, Mapping) else None
    v = {**_DEFAULTS, **checked(str(code), values, CREATE_BODY)}
    async with pool.acquire() as conn, conn.transaction():
        await _number_free(conn, v["callback_number"], v["code"])
        names = ["code", *_COLUMNS]
        casts = ["$1"] + [_cast(c, i) for i, c in enumerate(_COLUMNS, 2)]
        inserted = await conn.fetchval(
            f"INSERT INTO creditors ({', '.join(names)}) VALUES ({', '.join(casts)})"
            " ON CONFLICT (code) DO NOTHING RETURNING id",
            v["code"],
            *(_db(c, v[c]) for c in _COLUMNS),
        )
        if inserted is None:
            raise Conflict(f"creditor {v['code']!r} already exists", "code")
        await audit(conn, actor, "creditor.create", f"creditor:{v['code']}",
                    {"values": {c: v[c] for c in _COLUMNS}})  # fmt: skip
        row = await _fetch(conn, v["code"])
    return creditor_json(row)


async def edit_creditor(
    pool: asyncpg.Pool, code: str, changes: Mapping[str, Any], *, actor: str
) -> dict[str, Any]:
    """Change the fields ``changes`` names (:data:`EDIT_BODY`; ``policy`` replaced whole)."""
    c = checked(code, changes, EDIT_BODY)
    if not c:
        raise Invalid("body: nothing to change", "body")
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT * FROM creditors WHERE code = $1 FOR UPDATE", code)
        if current is None:
            raise NotFound(f"no creditor {code!r}")
        old = creditor_json(current)
        diff = {k: {"from": old[k], "to": v} for k, v in c.items() if old[k] != v}
        if "callback_number" in diff:
            await _number_free(conn, c["callback_number"], code)
        if diff:
            sets = [f"{k} = {_cast(k, i)}" for i, k in enumerate(diff, 2)]
            await conn.execute(
                f"UPDATE creditors SET {', '.join(sets)} WHERE code = $1",
                code,
                *(_db(k, c[k]) for k in diff),
            )
            await audit(conn, actor, "creditor.edit", f"creditor:{code}", {"changes": diff})
        row = await _fetch(conn, code)
    return creditor_json(row)


# -- API --------------------------------------------------------------------------------------
async def list_creditors(call: ApiCall) -> Any:
    return {"creditors": await creditor_rows(call.pool)}


async def get_creditor(call: ApiCall) -> Any:
    return creditor_json(await _fetch(call.pool, call.params["code"]))


async def create_creditor(call: ApiCall) -> Any:
    return await add_creditor(call.pool, call.body, actor=call.user.username)


async def change_creditor(call: ApiCall) -> Any:
    return await edit_creditor(call.pool, call.params["code"], call.body,
                               actor=call.user.username)  # fmt: skip


_P = {"code": CODE}
ROUTES = [
    ApiRoute("GET", "/creditors", list_creditors, "List creditors", "creditors", MANAGERS),
    ApiRoute("POST", "/creditors", create_creditor,
             "Create a creditor (public_name must not indicate debt collection; 409 when the "
             "code or the call-back number is taken)",
             "creditors", MANAGERS, body=CREATE_BODY, status=201, response="The creditor"),
    ApiRoute("GET", "/creditors/{code}", get_creditor, "One creditor", "creditors", MANAGERS,
             params=_P, response="The creditor"),
    ApiRoute("PATCH", "/creditors/{code}", change_creditor,
             "Change a creditor (the fields given; policy is replaced whole)", "creditors",
             MANAGERS, params=_P, body=EDIT_BODY, response="The creditor"),
]  # fmt: skip
