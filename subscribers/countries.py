"""Country codes and names, and the time zone a country's subscribers default to.

Countries are stored as ISO 3166-1 alpha-2 codes. Input accepts a code or a name:
the official short names from the tz database's `iso3166.tab` (shipped in the
`tzdata` package, so there is no table of our own to keep current) plus the
common names people actually write for the region this service was made for.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources
from zoneinfo import available_timezones

from subscribers.errors import StoreInputError

REGION = ("CN", "KH", "LA", "MM", "TH", "VN")

# Names people write that iso3166.tab does not use (keys are folded, see _fold).
ALIASES: dict[str, str] = {
    "viet nam": "VN",
    "vietnam": "VN",
    "socialist republic of vietnam": "VN",
    "lao pdr": "LA",
    "lao p.d.r.": "LA",
    "lao": "LA",
    "laos": "LA",
    "lao people's democratic republic": "LA",
    "burma": "MM",
    "myanmar": "MM",
    "myanmar (burma)": "MM",
    "republic of the union of myanmar": "MM",
    "cambodia": "KH",
    "kampuchea": "KH",
    "kingdom of cambodia": "KH",
    "china": "CN",
    "prc": "CN",
    "p.r. china": "CN",
    "pr china": "CN",
    "people's republic of china": "CN",
    "mainland china": "CN",
    "thailand": "TH",
    "siam": "TH",
    "kingdom of thailand": "TH",
    "usa": "US",
    "united states of america": "US",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "south korea": "KR",
    "korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "taiwan": "TW",
    "hong kong": "HK",
    "macao": "MO",
    "macau": "MO",
    "the netherlands": "NL",
    "holland": "NL",
    "czech republic": "CZ",
    "turkey": "TR",
}

# Where a country spans several zones, the zone most of its people live in.
DEFAULT_ZONES: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "KH": "Asia/Phnom_Penh",
    "LA": "Asia/Vientiane",
    "MM": "Asia/Yangon",
    "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "RU": "Europe/Moscow",
    "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City",
    "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty",
    "MN": "Asia/Ulaanbaatar",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "DE": "Europe/Berlin",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "EC": "America/Guayaquil",
    "UA": "Europe/Kyiv",
}

FALLBACK_ZONE = "UTC"


def _fold(text: str) -> str:
    """Compare names ignoring case, accents, extra spaces and curly apostrophes."""
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.casefold().split())


def _table(name: str) -> list[list[str]]:
    path = resources.files("tzdata.zoneinfo").joinpath(name)
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows


@cache
def country_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> short English name, for every assigned code."""
    return {row[0]: row[1] for row in _table("iso3166.tab")}


@cache
def _lookup() -> dict[str, str]:
    table = {_fold(name): code for code, name in country_names().items()}
    table.update({_fold(alias): code for alias, code in ALIASES.items()})
    return table


@cache
def _first_zones() -> dict[str, str]:
    zones: dict[str, str] = {}
    for row in _table("zone.tab"):
        zones.setdefault(row[0], row[2])
    return zones


def accepted_hint() -> str:
    region = ", ".join(f"{code} ({country_names()[code]})" for code in REGION)
    return (
        "use an ISO 3166-1 alpha-2 code or an English country name, e.g. "
        f"{region}; also accepted: Vietnam, Laos, Lao PDR, Burma, PRC"
    )


def normalise_country(value: str) -> str:
    """Return the ISO code for a code or a name; raise `StoreInputError` naming what is accepted."""
    text = value.strip()
    if len(text) == 2 and text.upper() in country_names():
        return text.upper()
    code = _lookup().get(_fold(text))
    if code is None:
        raise StoreInputError(f"unknown country {value!r}: {accepted_hint()}")
    return code


def country_name(code: str) -> str:
    return country_names().get(code, code)


def default_timezone(country: str | None) -> str:
    """The IANA zone new subscribers from `country` get; UTC when unknown or absent."""
    if not country:
        return FALLBACK_ZONE
    return DEFAULT_ZONES.get(country) or _first_zones().get(country) or FALLBACK_ZONE


@cache
def _zones() -> dict[str, str]:
    """Every IANA zone name the system knows, by its lower-case form (not the server's
    own `localtime` nor tzdata's placeholders)."""
    system = {"localtime", "posixrules", "Factory"}
    return {zone.lower(): zone for zone in available_timezones() - system}


def validate_timezone(value: str) -> str:
    """An IANA zone name, in its proper case ("asia/bangkok" -> "Asia/Bangkok"); the
    error names an example."""
    name = _zones().get(value.strip().lower())
    if name is None:
        raise StoreInputError(
            f"unknown time zone {value!r}: use an IANA name such as Asia/Yangon or Europe/Berlin"
        )
    return name
