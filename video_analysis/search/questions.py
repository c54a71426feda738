"""Counting questions answered exactly from the facts: "how many people came in through the door between 14:00
and 15:00?", "how many people on camera lobby today?", "when was the lobby busiest?", "how long did people stay
at the counter?".

A small parser turns the question into a structured query (what to count, which class, which line or zone,
which camera, which time range in the site's time zone); the query runs as parameterised SQL over the stored
facts (search/counts.py). No model writes SQL. The answer gives the number, how it was counted, and
cites rows a person can open. A question about counts or times that names nothing the facts hold is answered
"cannot answer that from the footage", with what can be asked; any other question is left to search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone, tzinfo

import psycopg

from video_analysis.events.answers import Answer
from video_analysis.search.counts import answer_count
from video_analysis.vision.attributes import PALETTE

CLASS_WORDS = {"people": "person", "persons": "person", "person": "person", "visitors": "person",
               "customers": "person", "cars": "car", "car": "car", "vehicles": "car", "trucks": "truck",
               "bicycles": "bicycle", "bikes": "bicycle"}
_COUNT = re.compile(r"^\s*how many\b")
_WHEN_BUSIEST = re.compile(r"^\s*when (?:was|is|were)\b.*\b(?:busiest|most crowded|fullest)\b")
_HOW_LONG = re.compile(r"^\s*how long\b")
_WHICH = re.compile(r"^\s*(?:which|who)\b")
_LONGEST = re.compile(r"\b(?:stayed|stays|stay|waited|wait|spent)\b.*\blongest\b|\blongest (?:stay|wait|visit)\b")
_MOST = re.compile(r"\b(?:busiest|most (?:people|visitors|customers|cars|vehicles|crowded)|most\b.*\bpeople)\b")
COLOUR_WORDS = {**{c: c for c in PALETTE}, "grey": "gray"}
_IN = re.compile(r"\b(?:came in|come in|entered|enter|went in|arrived|in through|into)\b")
_OUT = re.compile(r"\b(?:went out|left|exited|out through|leave)\b")
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_CLOCK}\s+(?:and|to|until|-)\s+{_CLOCK}")
_SINCE = re.compile(rf"\bsince\s+{_CLOCK}")


@dataclass(frozen=True)
class CountQuery:
    """A counting question, read: what to count, of which class, where and when."""

    what: str  # crossings | visits | people | busiest | dwell | longest | busiest_camera
    class_name: str = "person"
    name: str | None = None  # the line or zone asked about
    direction: str | None = None  # in | out (crossings)
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    when: str = ""  # the time range as said back
    colour: str | None = None  # worn (people) or painted (vehicles): "the person in red"

    def span(self) -> str:
        return f" {self.when}" if self.when else ""


def _clock(hour: str, minute: str | None, half: str | None) -> time:
    h = int(hour) % 24
    if half == "pm" and h < 12:
        h += 12
    if half == "am" and h == 12:
        h = 0
    return time(h, int(minute or 0))


def time_range(question: str, now: datetime, site: tzinfo) -> tuple[datetime | None, datetime | None, str]:
    """(since, until, as said) of the time words in ``question``, in the site's time zone; (None, None, "")
    when it names no time."""
    local = now.astimezone(site)
    day = local.date() - timedelta(days=1) if "yesterday" in question else local.date()
    said_day = "yesterday" if "yesterday" in question else "today"

    def at(moment: time, on=day) -> datetime:
        return datetime.combine(on, moment, site)

    if match := _BETWEEN.search(question):
        start, end = _clock(*match.group(1, 2, 3)), _clock(*match.group(4, 5, 6))
        return at(start), at(end), f"between {start:%H:%M} and {end:%H:%M} {said_day}"
    if match := _SINCE.search(question):
        start = _clock(*match.group(1, 2, 3))
        return at(start), now, f"since {start:%H:%M} {said_day}"
    for word, (start, end) in {"morning": (time(6), time(12)), "afternoon": (time(12), time(18)),
                               "evening": (time(18), time(23, 59, 59))}.items():
        if word in question:
            return at(start), at(end), f"{said_day} in the {word}"
    if "last hour" in question or "past hour" in question:
        return now - timedelta(hours=1), now, "in the last hour"
    if "last week" in question or "past week" in question:
        return now - timedelta(days=7), now, "in the last 7 days"
    if "yesterday" in question or "today" in question:
        return at(time(0)), at(time(0)) + timedelta(days=1), said_day
    return None, None, ""


def known_names(conn: psycopg.Connection) -> dict[str, str]:
    """The lines and zones the facts hold, by name: name -> "crossing" or "visit". One index probe a name (tracks'
    rows, millions of them, have the name '')."""
    return dict(conn.execute(
        """WITH RECURSIVE names AS (
               (SELECT name, kind FROM counting_events WHERE name > '' ORDER BY name, kind LIMIT 1)
               UNION ALL
               SELECT found.* FROM names, LATERAL (SELECT name, kind FROM counting_events WHERE name > names.name
                                                   ORDER BY name, kind LIMIT 1) found)
           SELECT name, kind FROM names"""))


def known_cameras(conn: psycopg.Connection) -> set[str]:
    """The cameras of the footage: one index probe a camera."""
    return {c for c, in conn.execute(
        """WITH RECURSIVE cameras AS (
               (SELECT camera FROM videos WHERE camera IS NOT NULL ORDER BY camera LIMIT 1)
               UNION ALL
               SELECT found.camera FROM cameras, LATERAL (SELECT camera FROM videos WHERE camera > cameras.camera
                                                          ORDER BY camera LIMIT 1) found)
           SELECT camera FROM cameras""")}


def parse(question: str, names: dict[str, str], cameras: set[str], now: datetime,
          site: tzinfo = timezone.utc) -> CountQuery | str | None:
    """The counting query ``question`` asks; a string saying why it cannot be answered when it asks a count
    the facts do not hold; None when it is no counting question (search answers it)."""
    text = question.lower().strip().rstrip("?")
    which = bool(_WHICH.search(text))
    if not (_COUNT.search(text) or _WHEN_BUSIEST.search(text) or _HOW_LONG.search(text)
            or (which and (_LONGEST.search(text) or ("camera" in text and _MOST.search(text))))):
        return None
    words = re.findall(r"[a-z][a-z0-9_-]*", text)
    class_name = next((CLASS_WORDS[w] for w in words if w in CLASS_WORDS), "person")
    name = next((n for n in sorted(names, key=len, reverse=True) if re.search(rf"\b{re.escape(n.lower())}\b", text)),
                None)
    camera = next((c for c in cameras if re.search(rf"\b{re.escape(c.lower())}\b", text)), None)
    since, until, said = time_range(text, now, site)
    named = set(re.findall(r"[a-z][a-z0-9_-]*", f"{name or ''} {camera or ''}".lower()))  # "red door" names a line
    colour = next((COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS and w not in named), None)
    query = CountQuery("people", class_name, name, None, camera, since, until, said, colour)
    if which and "camera" in text and _MOST.search(text):
        return replace(query, what="busiest_camera", camera=None)
    if which:
        if name is None or names[name] != "visit":
            return "it asks who stayed longest, which is answered per zone: name one of the zones"
        return replace(query, what="longest")
    if _WHEN_BUSIEST.search(text):
        return replace(query, what="busiest")
    if _HOW_LONG.search(text):
        if name is None or names[name] != "visit":
            return "it asks how long, which is answered per zone: name one of the zones"
        return replace(query, what="dwell")
    if name is not None:
        if names[name] == "crossing":
            direction = "in" if _IN.search(text) else "out" if _OUT.search(text) else None
            return replace(query, what="crossings", direction=direction)
        return replace(query, what="visits")
    mentioned = [w for w in words if w not in CLASS_WORDS and w not in _PLAIN and not w.isdigit()]
    if any(w in ("door", "entrance", "exit", "gate", "line", "zone", "counter", "till", "area") for w in mentioned):
        return "it names a place the zones file does not define as a counting line or zone"
    return query


_PLAIN = set("how many much were was did the a an on in at of to through into from between and since today yesterday "
             "wearing dressed who which "
             "this last past hour week morning afternoon evening am pm camera came come entered went left there "
             "been seen pass passed crossed cross by total overall".split())


def cannot_answer(question: str, why: str, names: dict[str, str]) -> Answer:
    lines = sorted(n for n, kind in names.items() if kind == "crossing")
    zones = sorted(n for n, kind in names.items() if kind == "visit")
    can = ["how many people (on a camera, today, between 14:00 and 15:00, in red...)", "when was it busiest",
           "which camera saw the most people"]
    if lines:
        can.append(f"how many people came in through {lines[0]} (lines: {', '.join(lines)})")
    if zones:
        can.append(f"how long did people stay in {zones[0]}, or who stayed longest (zones: {', '.join(zones)})")
    return Answer(question, f"Cannot answer that from the footage: {why}. You can ask: {'; '.join(can)}.", [],
                  generator="count")


def counted(conn: psycopg.Connection, question: str, now: datetime | None = None, site: tzinfo = timezone.utc,
            filters=None, phraser=None) -> Answer | None:
    """The answer to a counting question, or None when ``question`` is not one (search answers it).
    ``filters`` (a camera, a time range given beside the question) narrow it where the question does not.
    ``phraser`` (a language model's phrase_query, full profile) reads a question about quantities that the
    rules do not (search/phrasing.py): its query is checked before it runs, and the answer's note says so."""
    names, cameras, now = known_names(conn), known_cameras(conn), now or datetime.now(timezone.utc)
    query, note = parse(question, names, cameras, now, site), None
    if query is None and phraser is not None:
        from video_analysis.search.phrasing import SOUNDS_COUNTED, read_query, vocabulary

        if SOUNDS_COUNTED.search(question):
            raw = phraser(question, vocabulary(names, cameras))
            query, note = read_query(raw, names, cameras, now, site), f"read by the language model: {raw.strip()}"
    if query is None:
        return None
    if isinstance(query, str):
        return replace(cannot_answer(question, query, names), note=note)
    if filters is not None:
        query = replace(query, camera=query.camera or filters.camera, since=query.since or filters.since,
                        until=query.until or filters.until)
    return replace(answer_count(conn, question, query), note=note)
