"""Small data tables: which IANA zones an address may be in, and which holiday subdivisions.

Regions are ISO 3166-2 subdivision codes without the country prefix. A region that spans zones
lists every zone it spans (the caller then requires the window in all of them); a postal-code
prefix narrows a split region when the address has one.
"""

from __future__ import annotations

_ET = "America/New_York"
_CT = "America/Chicago"
_MT = "America/Denver"
_PT = "America/Los_Angeles"

US_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": (_CT,), "AK": ("America/Anchorage", "America/Adak"), "AZ": ("America/Phoenix", _MT),
    "AR": (_CT,), "CA": (_PT,), "CO": (_MT,), "CT": (_ET,), "DE": (_ET,), "DC": (_ET,),
    "FL": (_ET, _CT), "GA": (_ET,), "HI": ("Pacific/Honolulu",), "ID": ("America/Boise", _PT),
    "IL": (_CT,), "IN": ("America/Indiana/Indianapolis", _CT), "IA": (_CT,), "KS": (_CT, _MT),
    "KY": (_ET, _CT), "LA": (_CT,), "ME": (_ET,), "MD": (_ET,), "MA": (_ET,),
    "MI": ("America/Detroit", "America/Menominee"), "MN": (_CT,), "MS": (_CT,), "MO": (_CT,),
    "MT": (_MT,), "NE": (_CT, _MT), "NV": (_PT, _MT), "NH": (_ET,), "NJ": (_ET,), "NM": (_MT,),
    "NY": (_ET,), "NC": (_ET,), "ND": (_CT, _MT), "OH": (_ET,), "OK": (_CT,),
    "OR": (_PT, "America/Boise"), "PA": (_ET,), "RI": (_ET,), "SC": (_ET,), "SD": (_CT, _MT),
    "TN": (_CT, _ET), "TX": (_CT, _MT), "UT": (_MT,), "VT": (_ET,), "VA": (_ET,), "WA": (_PT,),
    "WV": (_ET,), "WI": (_CT,), "WY": (_MT,), "PR": ("America/Puerto_Rico",),
    "GU": ("Pacific/Guam",), "VI": ("America/St_Thomas",), "AS": ("Pacific/Pago_Pago",),
    "MP": ("Pacific/Saipan",),
}  # fmt: skip

US_STATE_NAMES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "washington d.c.": "DC", "washington dc": "DC", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA",
    "kansas": "KS", "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
    "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV", "new hampshire": "NH",
    "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN",
    "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
    "washington state": "WA", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
    "puerto rico": "PR", "guam": "GU",
}  # fmt: skip

# ZIP-code prefixes (first three digits) that settle a split state's zone; other ZIP codes of
# the state fall to ``default``.
US_POSTAL_ZONES: dict[str, tuple[str, dict[str, str]]] = {
    # Florida's western Panhandle (Pensacola, Panama City) is on Central time.
    "FL": (_ET, {"324": _CT, "325": _CT}),
    # El Paso and Hudspeth counties are on Mountain time.
    "TX": (_CT, {"798": _MT, "799": _MT, "885": _MT}),
}

MX_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AGU": ("America/Mexico_City",), "BCN": ("America/Tijuana",), "BCS": ("America/Mazatlan",),
    "CAM": ("America/Merida",), "CHP": ("America/Mexico_City",),
    "CHH": ("America/Chihuahua", "America/Ciudad_Juarez", "America/Ojinaga"),
    "CMX": ("America/Mexico_City",), "COA": ("America/Monterrey", "America/Matamoros"),
    "COL": ("America/Mexico_City",), "DUR": ("America/Monterrey",),
    "GUA": ("America/Mexico_City",), "GRO": ("America/Mexico_City",),
    "HID": ("America/Mexico_City",), "JAL": ("America/Mexico_City",),
    "MEX": ("America/Mexico_City",), "MIC": ("America/Mexico_City",),
    "MOR": ("America/Mexico_City",), "NAY": ("America/Mazatlan", "America/Bahia_Banderas"),
    "NLE": ("America/Monterrey", "America/Matamoros"), "OAX": ("America/Mexico_City",),
    "PUE": ("America/Mexico_City",), "QUE": ("America/Mexico_City",), "ROO": ("America/Cancun",),
    "SLP": ("America/Mexico_City",), "SIN": ("America/Mazatlan",), "SON": ("America/Hermosillo",),
    "TAB": ("America/Mexico_City",), "TAM": ("America/Monterrey", "America/Matamoros"),
    "TLA": ("America/Mexico_City",), "VER": ("America/Mexico_City",), "YUC": ("America/Merida",),
    "ZAC": ("America/Mexico_City",),
}  # fmt: skip
MX_ALIASES = {"CDMX": "CMX", "DF": "CMX", "BC": "BCN", "QROO": "ROO", "NL": "NLE"}

# Spain: autonomous communities (ISO 3166-2:ES) -> zone; provinces (first two postal digits)
# -> community, which also picks the regional holiday calendar.
ES_COMMUNITY_ZONES: dict[str, tuple[str, ...]] = {
    code: ("Europe/Madrid",)
    for code in ("AN", "AR", "AS", "CB", "CL", "CM", "CT", "EX", "GA", "IB", "MC", "MD", "NC",
                 "PV", "RI", "VC")
} | {"CN": ("Atlantic/Canary",), "CE": ("Africa/Ceuta",), "ML": ("Africa/Ceuta",)}  # fmt: skip
ES_PROVINCE_COMMUNITY: dict[str, str] = {
    "01": "PV", "02": "CM", "03": "VC", "04": "AN", "05": "CL", "06": "EX", "07": "IB",
    "08": "CT", "09": "CL", "10": "EX", "11": "AN", "12": "VC", "13": "CM", "14": "AN",
    "15": "GA", "16": "CM", "17": "CT", "18": "AN", "19": "CM", "20": "PV", "21": "AN",
    "22": "AR", "23": "AN", "24": "CL", "25": "CT", "26": "RI", "27": "GA", "28": "MD",
    "29": "AN", "30": "MC", "31": "NC", "32": "GA", "33": "AS", "34": "CL", "35": "CN",
    "36": "GA", "37": "CL", "38": "CN", "39": "CB", "40": "CL", "41": "AN", "42": "CL",
    "43": "CT", "44": "AR", "45": "CM", "46": "VC", "47": "CL", "48": "PV", "49": "CL",
    "50": "AR", "51": "CE", "52": "ML",
}  # fmt: skip
ES_ALIASES = {
    "canarias": "CN", "islas canarias": "CN", "canary islands": "CN", "madrid": "MD",
    "comunidad de madrid": "MD", "cataluna": "CT", "catalunya": "CT", "andalucia": "AN",
    "aragon": "AR", "asturias": "AS", "cantabria": "CB", "castilla y leon": "CL",
    "castilla-la mancha": "CM", "extremadura": "EX", "galicia": "GA", "baleares": "IB",
    "illes balears": "IB", "murcia": "MC", "navarra": "NC", "pais vasco": "PV", "euskadi": "PV",
    "la rioja": "RI", "comunidad valenciana": "VC", "valencia": "VC", "ceuta": "CE",
    "melilla": "ML",
}  # fmt: skip

CL_REGION_ZONES: dict[str, tuple[str, ...]] = {
    code: ("America/Santiago",)
    for code in ("AI", "AN", "AP", "AR", "AT", "BI", "CO", "LI", "LL", "LR", "ML", "NB", "RM",
                 "TA")
} | {
    "MA": ("America/Punta_Arenas",),
    # Valparaíso includes Easter Island (Pacific/Easter); its postal codes start with 277.
    "VS": ("America/Santiago", "Pacific/Easter"),
}  # fmt: skip
CL_POSTAL_ZONES: dict[str, tuple[str, dict[str, str]]] = {
    "VS": ("America/Santiago", {"277": "Pacific/Easter"}),
}

SINGLE_ZONE_COUNTRIES: dict[str, str] = {"CO": "America/Bogota", "PE": "America/Lima"}

REGION_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    "US": US_STATE_ZONES,
    "MX": MX_STATE_ZONES,
    "ES": ES_COMMUNITY_ZONES,
    "CL": CL_REGION_ZONES,
}
POSTAL_ZONES: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "US": US_POSTAL_ZONES,
    "CL": CL_POSTAL_ZONES,
}

# A zone that pins the holiday subdivision (the rest of the country's zones do not).
ZONE_SUBDIVISIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ES", "Atlantic/Canary"): ("CN",),
    ("ES", "Africa/Ceuta"): ("CE", "ML"),
    ("CL", "Pacific/Easter"): ("VS",),
    ("CL", "America/Punta_Arenas"): ("MA",),
}
