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

# ZIP-code prefixes that settle a split state's zones; the longest matching prefix wins, and
# other ZIP codes of the state fall to ``default``. A prefix whose area straddles the line lists
# both zones.
US_POSTAL_ZONES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    # Florida's western Panhandle (Pensacola 325, Panama City 324) is on Central time, except
    # the coast of Gulf County (Port St. Joe, Cape San Blas, St. Joe Beach), which keeps Eastern
    # time: Gulf County's ZIP codes (32456, 32457, 32465) straddle the line.
    "FL": (_ET, {"324": (_CT,), "325": (_CT,), "32456": (_ET, _CT), "32457": (_ET, _CT),
                 "32465": (_ET, _CT)}),
    # Only El Paso and Hudspeth counties are on Mountain time. 799 and 885 are El Paso's; 798
    # also serves Central-time towns of far West Texas (Alpine 79830, Marfa 79843, Presidio
    # 79845, Van Horn 79855), so it settles nothing.
    "TX": (_CT, {"798": (_CT, _MT), "799": (_MT,), "885": (_MT,)}),
}  # fmt: skip

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
    for code in ("AN", "AP", "AR", "AT", "BI", "CO", "LI", "LL", "LR", "ML", "NB", "RM",
                 "TA")
} | {
    "MA": ("America/Punta_Arenas",),
    # Aysén keeps -03 all year since 2025 (tzdata 2025b: America/Coyhaique), like Magallanes.
    "AI": ("America/Coyhaique",),
    # Valparaíso includes Easter Island (Pacific/Easter); its postal codes start with 277.
    "VS": ("America/Santiago", "Pacific/Easter"),
}  # fmt: skip
CL_POSTAL_ZONES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "VS": ("America/Santiago", {"277": ("Pacific/Easter",)}),
}

SINGLE_ZONE_COUNTRIES: dict[str, str] = {"CO": "America/Bogota", "PE": "America/Lima"}

REGION_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    "US": US_STATE_ZONES,
    "MX": MX_STATE_ZONES,
    "ES": ES_COMMUNITY_ZONES,
    "CL": CL_REGION_ZONES,
}
POSTAL_ZONES: dict[str, dict[str, tuple[str, dict[str, tuple[str, ...]]]]] = {
    "US": US_POSTAL_ZONES,
    "CL": CL_POSTAL_ZONES,
}

# A zone that pins the holiday subdivision (the rest of the country's zones do not).
ZONE_SUBDIVISIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ES", "Atlantic/Canary"): ("CN",),
    ("ES", "Africa/Ceuta"): ("CE", "ML"),
    ("CL", "Pacific/Easter"): ("VS",),
    ("CL", "America/Punta_Arenas"): ("MA",),
    ("CL", "America/Coyhaique"): ("AI",),
}

# -- numbers ---------------------------------------------------------------------------------
# E.164 prefixes (digits after "+"; the longest match wins) whose zones REPLACE what the
# numbering library says, where its data predates a change of the zones or says less than the
# number can mean. Every zone a number under the prefix may be in is listed.
_CL_ZONES = ("America/Santiago", "America/Punta_Arenas", "America/Coyhaique", "Pacific/Easter")
NUMBER_PREFIX_ZONES: dict[str, tuple[str, ...]] = {
    # Chile: Magallanes (61) is on -03 all year since 2017 (America/Punta_Arenas) and Aysén (67)
    # since 2025 (America/Coyhaique); the library still says America/Santiago for both.
    "5661": ("America/Punta_Arenas",),
    "5667": ("America/Coyhaique",),
    # Valparaíso's area code (32) includes Easter Island (Rapa Nui numbers are +56 32 210 and
    # +56 32 255...); the library says America/Santiago for all of it.
    "5632": ("America/Santiago", "Pacific/Easter"),
    # Chilean mobiles (9) are not geographic: the phone may be anywhere in Chile.
    "569": _CL_ZONES,
    # Mexico: Chihuahua left Mountain time for -06 all year on 2022-10-30 (tzdata 2022f/g:
    # America/Chihuahua); its border municipalities follow US rules (America/Ciudad_Juarez,
    # America/Ojinaga). The library still says America/Mazatlan (-07) for these area codes.
    # 636 (Nuevo Casas Grandes) also serves Ascensión and Janos on the border.
    **{f"52{ac}": ("America/Chihuahua",)
       for ac in ("614", "621", "625", "627", "628", "629", "635", "639", "648", "652", "657",
                  "659")},
    "52636": ("America/Chihuahua", "America/Ciudad_Juarez"),
    "52649": ("America/Chihuahua", "America/Monterrey"),  # Chihuahua/Durango
    # Matamoros (868) is a Tamaulipas border city on US DST rules (America/Matamoros); the
    # library says America/Mexico_City.
    "52868": ("America/Matamoros", "America/Mexico_City"),
}  # fmt: skip

# NANP overlay area codes -> the area code they overlay: a number of an overlay may be anywhere
# in the overlaid area, so it gets every zone of it.
NANP_OVERLAYS: dict[str, str] = {
    "448": "850",  # Florida Panhandle (Eastern and Central)
    "364": "270",  # western Kentucky (Central and Eastern)
    "930": "812",  # southern Indiana (Eastern and Central)
    "458": "541",  # Oregon outside the Portland area (Pacific and Mountain)
    "986": "208",  # Idaho (Mountain and Pacific)
}

# Zones newer than some tzdata releases, with a fixed-offset zone that gives the same wall
# time for the years the engine decides (used only where the named zone is missing).
ZONE_FALLBACKS: dict[str, str] = {"America/Coyhaique": "Etc/GMT+3"}
