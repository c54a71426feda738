"""Counting questions answered exactly from the facts: "how many people came in through the door between 14:00
and 15:00?", "how many people on camera lobby today?", "when was the lobby busiest?", "how long did people stay
at the counter?".

A small parser turns the question into a structured query (what to count, which class, which line or zone,
which camera, which time range in the site's time zone); the query runs as parameterised SQL over the stored
facts (tracks, `counting_events`). No model writes SQL. The answer gives the number, how it was counted, and
cites rows a person can open. A question about counts or times that names nothing the facts hold is answered
"cannot answer that from the footage", with what can be asked; any other question is left to search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone, tzinfo

import psycopg

from video_analysis.events.answers import Answer, Citation

CLASS_WORDS = {"people": "person", "persons": "person", "person": "person", "visitors": "person",
               "customers": "person", "cars": "car", "car": "car", "vehicles": "car", "trucks": "truck",
               "bicycles": "bicycle", "bikes": "bicycle"}
_COUNT = re.compile(r"^\s*how many\b")
_WHEN_BUSIEST = re.compile(r"^\s*when (?:was|is|were)\b.*\b(?:busiest|most crowded|fullest)\b")
_HOW_LONG = re.compile(r"^\s*how long\b")
_IN = re.compile(r"\b(?:came in|come in|entered|enter|went in|arrived|in through|into)\b")
_OUT = re.compile(r"\b(?:went out|left|exited|out through|leave)\b")
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_CLOCK}\s+(?:and|to|until|-)\s+{_CLOCK}")
_SINCE = re.compile(rf"\bsince\s+{_CLOCK}")
CITED = 5  # rows cited with a count: enough to open and check, not the whole list


@dataclass(frozen=True)
class CountQuery:
    """A counting question, read: what to count, of which class, where and when."""

    what: str  # crossings | visits | people | busiest | dwell
    class_name: str = "person"
    name: str | None = None  # the line or zone asked about
    direction: str | None = None  # in | out (crossings)
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    when: str = ""  # the time range as said back

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
    """The lines and zones the facts hold, by name: name -> "crossing" or "visit"."""
    return dict(conn.execute("SELECT DISTINCT ON (name) name, kind FROM counting_events ORDER BY name, kind"))


def known_cameras(conn: psycopg.Connection) -> set[str]:
    return {c for c, in conn.execute("SELECT DISTINCT camera FROM videos WHERE camera IS NOT NULL")}


def parse(question: str, names: dict[str, str], cameras: set[str], now: datetime,
          site: tzinfo = timezone.utc) -> CountQuery | str | None:
    """The counting query ``question`` asks; a string saying why it cannot be answered when it asks a count
    the facts do not hold; None when it is no counting question (search answers it)."""
    text = question.lower().strip().rstrip("?")
    if not (_COUNT.search(text) or _WHEN_BUSIEST.search(text) or _HOW_LONG.search(text)):
        return None
    words = re.findall(r"[a-z][a-z0-9_-]*", text)
    class_name = next((CLASS_WORDS[w] for w in words if w in CLASS_WORDS), "person")
    name = next((n for n in sorted(names, key=len, reverse=True) if re.search(rf"\b{re.escape(n.lower())}\b", text)),
                None)
    camera = next((c for c in cameras if re.search(rf"\b{re.escape(c.lower())}\b", text)), None)
    since, until, said = time_range(text, now, site)
    query = CountQuery("people", class_name, name, None, camera, since, until, said)
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
             "this last past hour week morning afternoon evening am pm camera came come entered went left there "
             "been seen pass passed crossed cross by total overall".split())


def _window(query: CountQuery) -> tuple[str, dict]:
    """The query's camera and time range as tests on a row's video ``v`` and its moment ``at``."""
    tests, params = [], {"camera": query.camera, "since": query.since, "until": query.until}
    if query.camera:
        tests.append("v.camera = %(camera)s")
    if query.since:
        tests.append("at_end >= %(since)s")
    if query.until:
        tests.append("at_start < %(until)s")
    return (" AND ".join(tests) or "TRUE"), params


_EVENTS = """
WITH e AS (
    SELECT e.*, v.object_key, v.camera,
           coalesce(v.recorded_at, v.last_modified) + make_interval(secs => e.start_t) AS at_start,
           coalesce(v.recorded_at, v.last_modified) + make_interval(secs => e.end_t) AS at_end
    FROM counting_events e JOIN videos v USING (partition_key)
    WHERE e.kind = %(kind)s AND e.name = %(name)s AND e.class_name = %(class_name)s AND v.superseded_by IS NULL
)
SELECT partition_key, object_key, track_id, start_t, end_t, direction FROM e v
WHERE {window} AND (%(direction)s::text IS NULL OR direction = %(direction)s)
ORDER BY at_start, partition_key, track_id
"""

_TRACKS = """
WITH t AS (
    SELECT t.partition_key, v.object_key, v.camera, t.track_id, t.first_t AS start_t, t.last_t AS end_t,
           a.upper_color, a.lower_color, t.path -> 0 AS first_point, t.path -> -1 AS last_point,
           t.best_y2 - t.best_y1 AS height,
           coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.first_t) AS at_start,
           coalesce(v.recorded_at, v.last_modified) + make_interval(secs => t.last_t) AS at_end
    FROM tracks t JOIN videos v USING (partition_key)
    LEFT JOIN track_attributes a USING (partition_key, track_id)
    WHERE t.class_name = %(class_name)s AND v.superseded_by IS NULL
)
SELECT partition_key, object_key, track_id, start_t, end_t, upper_color, lower_color, first_point, last_point,
       height, at_start FROM t v
WHERE {window}
ORDER BY at_start, partition_key, track_id
"""


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _noun(class_name: str, n: int) -> str:
    return {"person": "person" if n == 1 else "people"}.get(class_name, class_name if n == 1 else class_name + "s")


def _cite(rows: list[dict]) -> list[Citation]:
    return [Citation(i, r["partition_key"], r["object_key"], round(r["start_t"], 1), round(r["end_t"], 1))
            for i, r in enumerate(rows[:CITED], 1)]


def _refs(citations: list[Citation]) -> str:
    return "".join(f"[{c.ref}]" for c in citations)


def likely_repeats(rows: list[dict], gap_s: float = 3.0, overlap_s: float = 1.0) -> int:
    """Tracks that are likely the same one as the track before it, in the same video: starting within ``gap_s``
    of that one's end (or overlapping it by at most ``overlap_s``: a track the tracker split in two), and either
    where it ended (within a body height) or dressed alike (a person lost and found again)."""
    repeats, by_video = 0, {}
    for row in rows:
        by_video.setdefault(row["partition_key"], []).append(row)
    for tracks in by_video.values():
        tracks.sort(key=lambda r: r["start_t"])
        for before, after in zip(tracks, tracks[1:], strict=False):
            if not -overlap_s <= after["start_t"] - before["end_t"] <= gap_s:
                continue
            alike = before["upper_color"] and (before["upper_color"], before["lower_color"]) == (
                after["upper_color"], after["lower_color"])
            end, start = before.get("last_point"), after.get("first_point")
            near = bool(end and start) and ((end[1] - start[1]) ** 2 + (end[2] - start[2]) ** 2) ** 0.5 <= max(
                before.get("height") or 0.0, after.get("height") or 0.0)
            repeats += bool(alike or near)
    return repeats


def answer_count(conn: psycopg.Connection, question: str, query: CountQuery) -> Answer:
    """The exact answer to a parsed counting question, with how it was counted and the rows it counted."""
    window, params = _window(query)
    params |= {"class_name": query.class_name, "name": query.name, "direction": query.direction}
    where = f" on camera {query.camera}" if query.camera else ""
    if query.what in ("crossings", "visits"):
        kind = "crossing" if query.what == "crossings" else "visit"
        rows = conn.execute(_EVENTS.format(window=window), {**params, "kind": kind}, prepare=False).fetchall()
        rows = [dict(zip(("partition_key", "object_key", "track_id", "start_t", "end_t", "direction"), r,
                         strict=True)) for r in rows]
        cited = _cite(rows)
        if query.what == "crossings":
            way = {"in": "in through", "out": "out through", None: "across"}[query.direction]
            how = (f"crossings of the line {query.name!r}" + (f", direction {query.direction}"
                                                               if query.direction else ", both ways"))
            text = (f"{len(rows)} {_noun(query.class_name, len(rows))} went {way} {query.name}{where}{query.span()} "
                    f"(counted as {how}){_refs(cited)}.")
        else:
            tracks = len({(r["partition_key"], r["track_id"]) for r in rows})
            text = (f"{_plural(len(rows), 'visit')} to {query.name}{where}{query.span()}, by "
                    f"{tracks} {_noun(query.class_name, tracks)} (counted as entries into the zone){_refs(cited)}.")
        return Answer(question, text, cited, generator="count")
    if query.what == "dwell":
        rows = conn.execute(_EVENTS.format(window=window), {**params, "kind": "visit"}, prepare=False).fetchall()
        rows = [dict(zip(("partition_key", "object_key", "track_id", "start_t", "end_t", "direction"), r,
                         strict=True)) for r in rows]
        if not rows:
            return Answer(question, f"Nobody stayed in {query.name}{where}{query.span()}.", [], generator="count")
        rows.sort(key=lambda r: r["start_t"] - r["end_t"])  # longest first
        stays = sorted(r["end_t"] - r["start_t"] for r in rows)
        cited = _cite(rows)
        median = stays[len(stays) // 2]
        text = (f"{_plural(len(stays), 'stay')} in {query.name}{where}{query.span()}: median {median:.0f} s, "
                f"longest {stays[-1]:.0f} s (the longest cited first){_refs(cited)}.")
        return Answer(question, text, cited, generator="count")
    rows = conn.execute(_TRACKS.format(window=window), params, prepare=False).fetchall()
    rows = [dict(zip(("partition_key", "object_key", "track_id", "start_t", "end_t", "upper_color", "lower_color",
                      "first_point", "last_point", "height", "at_start"), r, strict=True)) for r in rows]
    if query.what == "busiest":
        if not rows:
            return Answer(question, f"No {_noun(query.class_name, 2)} were seen{where}{query.span()}.", [],
                          generator="count")
        hours: dict[datetime, list[dict]] = {}
        for row in rows:
            hours.setdefault(row["at_start"].replace(minute=0, second=0, microsecond=0), []).append(row)
        hour, busiest = max(hours.items(), key=lambda item: (len(item[1]), -item[0].timestamp()))
        cited = _cite(busiest)
        text = (f"The busiest hour{where}{query.span()} was {hour:%Y-%m-%d %H:00}-{(hour + timedelta(hours=1)):%H:00} "
                f"UTC, with {len(busiest)} {_noun(query.class_name, len(busiest))} (tracks starting in that hour)"
                f"{_refs(cited)}.")
        return Answer(question, text, cited, generator="count")
    repeats = likely_repeats(rows) if query.class_name == "person" else 0
    cited = _cite(rows)
    if repeats:
        text = (f"About {len(rows) - repeats} {_noun(query.class_name, len(rows) - repeats)}{where}{query.span()}: "
                f"{len(rows)} tracks, {_plural(repeats, 'of them')} likely the same {query.class_name} seen again "
                f"(starting where the one before ended, or dressed alike, within seconds){_refs(cited)}.")
    else:
        text = (f"{len(rows)} {_noun(query.class_name, len(rows))}{where}{query.span()} "
                f"(counted as distinct tracks){_refs(cited)}.")
    return Answer(question, text, cited, generator="count")


def cannot_answer(question: str, why: str, names: dict[str, str]) -> Answer:
    lines = sorted(n for n, kind in names.items() if kind == "crossing")
    zones = sorted(n for n, kind in names.items() if kind == "visit")
    can = ["how many people (on a camera, today, between 14:00 and 15:00...)", "when was it busiest"]
    if lines:
        can.append(f"how many people came in through {lines[0]} (lines: {', '.join(lines)})")
    if zones:
        can.append(f"how long did people stay in {zones[0]} (zones: {', '.join(zones)})")
    return Answer(question, f"Cannot answer that from the footage: {why}. You can ask: {'; '.join(can)}.", [],
                  generator="count")


def counted(conn: psycopg.Connection, question: str, now: datetime | None = None, site: tzinfo = timezone.utc,
            filters=None) -> Answer | None:
    """The answer to a counting question, or None when ``question`` is not one (search answers it).
    ``filters`` (a camera, a time range given beside the question) narrow it where the question does not."""
    names = known_names(conn)
    query = parse(question, names, known_cameras(conn), now or datetime.now(timezone.utc), site)
    if query is None:
        return None
    if isinstance(query, str):
        return cannot_answer(question, query, names)
    if filters is not None:
        query = replace(query, camera=query.camera or filters.camera, since=query.since or filters.since,
                        until=query.until or filters.until)
    return answer_count(conn, question, query)
