"""Counting questions, once parsed (search/questions.py), answered exactly from the counting facts.

A row counts when its moment began inside the asked time range: a crossing's moment, an entry into a zone, a
track's first sight. Whole hours of the range are read from the hourly tallies (``counting_hours``) and only
the part-hours at its edges from the rows (``counting_events``), so a year costs what a day does. The answer
gives the number, how it was counted, and the first rows it counted, which a person can open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import psycopg

from video_analysis.events.answers import Answer, Citation
from video_analysis.store.catalog import RECORDED_AT
from video_analysis.store.counting import MOMENT

CITED = 5  # rows cited with a count: enough to open and check, not the whole list
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Counted:
    """What one kind of row (tracks, crossings of a line, visits to a zone) adds up to in a query's range."""

    kind: str  # track | crossing | visit
    name: str = ""  # the line or zone; "" for tracks
    direction: str | None = None  # crossings: in | out | None for both


def _floor(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime) -> datetime:
    floor = _floor(moment)
    return floor if floor == moment else floor + _HOUR


def _utc(key):
    """An hour as UTC, whatever the database session's time zone (a camera's name stays as it is)."""
    return key.astimezone(timezone.utc) if isinstance(key, datetime) else key


def _split(since: datetime | None, until: datetime | None):
    """The range's whole UTC hours (from, to: None for open) and its part-hour edges [(from, to)]."""
    lo = _ceil(since) if since else None
    hi = _floor(until) if until else None
    if lo is not None and hi is not None and lo >= hi:
        return None, [(since, until)]
    edges = [(a, b) for a, b in ((since, lo), (hi, until)) if a is not None and b is not None and a < b]
    return (lo, hi), edges


# The rows of a kind in a range. A row's moment is its video's start plus at most what was decoded of it (the
# detection pass's covered_s; the header's duration may say less), so the videos are bounded through their
# start (an index) by the longest video's span.
_ROWS_OF = f"""
    FROM videos v JOIN counting_events e USING (partition_key)
    WHERE v.superseded_by IS NULL AND (%(camera)s::text IS NULL OR v.camera = %(camera)s)
      AND e.kind = %(kind)s AND e.name = %(name)s AND e.class_name = %(class_name)s
      AND (%(direction)s::text IS NULL OR e.direction = %(direction)s)
      AND (%(since)s::timestamptz IS NULL OR ({RECORDED_AT} >= %(since)s - make_interval(
               secs => (SELECT coalesce(max(greatest(duration_s, covered_s)), 0) + 60 FROM videos))
           AND {MOMENT} >= %(since)s))
      AND (%(until)s::timestamptz IS NULL OR ({RECORDED_AT} < %(until)s AND {MOMENT} < %(until)s))
      AND (%(colour)s::text IS NULL OR EXISTS (
               SELECT 1 FROM track_attributes a WHERE a.partition_key = e.partition_key AND a.track_id = e.track_id
                 AND %(colour)s IN (a.upper_color, a.lower_color, a.color)))
"""


_TALLIES = """
SELECT {by}, sum(h.n), sum(h.repeats) FROM counting_hours h JOIN videos v USING (partition_key)
WHERE h.kind = %(kind)s AND h.class_name = %(class_name)s AND h.name = %(name)s
  AND (%(direction)s::text IS NULL OR h.direction = %(direction)s)
  AND v.superseded_by IS NULL AND (%(camera)s::text IS NULL OR v.camera = %(camera)s)
  AND (%(lo)s::timestamptz IS NULL OR h.hour >= %(lo)s) AND (%(hi)s::timestamptz IS NULL OR h.hour < %(hi)s)
GROUP BY 1
"""
_BY = {"hour": ("h.hour", f"date_trunc('hour', {MOMENT}, 'UTC')"), "camera": ("v.camera", "v.camera")}


def _params(query, what: Counted, since=None, until=None) -> dict:
    return {"camera": query.camera, "kind": what.kind, "name": what.name, "class_name": query.class_name,
            "direction": what.direction, "since": since, "until": until, "colour": query.colour}


def hourly(conn: psycopg.Connection, query, what: Counted, by: str = "hour") -> dict:
    """{UTC hour (or camera, ``by``): (rows that began in it, of them likely repeats)} over the query's camera,
    time range and colour. A colour is on the rows only: a question about one is counted from them."""
    tallies: dict = {}
    whole, edges = _split(query.since, query.until)
    if query.colour:
        whole, edges = None, [(query.since, query.until)]
    tally, row = _BY[by]
    if whole is not None:
        for key, n, repeats in conn.execute(_TALLIES.format(by=tally),
                                            {**_params(query, what), "lo": whole[0], "hi": whole[1]}, prepare=False):
            tallies[_utc(key)] = (int(n), int(repeats))
    for since, until in edges:
        for key, n, repeats in conn.execute(
                f"SELECT {row}, count(*), count(*) FILTER (WHERE e.likely_repeat) {_ROWS_OF} GROUP BY 1",
                _params(query, what, since, until), prepare=False):
            key = _utc(key)
            was = tallies.get(key, (0, 0))
            tallies[key] = (was[0] + n, was[1] + repeats)
    return tallies


def first_rows(conn: psycopg.Connection, query, what: Counted) -> list[Citation]:
    """The first rows counted, by their video's start, then their moment."""
    return _cited(conn.execute(f"SELECT e.partition_key, v.object_key, e.start_t, e.end_t {_ROWS_OF} "
                               f"ORDER BY {RECORDED_AT}, e.start_t LIMIT {CITED}",
                               _params(query, what, query.since, query.until), prepare=False).fetchall())


def _cited(rows) -> list[Citation]:
    """Rows (partition, object key, start, end) as citations [1]..[n]."""
    return [Citation(i, key, obj, round(start, 1), round(end, 1)) for i, (key, obj, start, end) in enumerate(rows, 1)]


def stays(conn: psycopg.Connection, query, what: Counted) -> tuple[int, float, float, list[Citation]]:
    """(stays, median seconds, longest seconds, the longest cited first) in a zone over the query's range. Two
    passes over the rows: one materialised pass was slower (a year of visits spills to disk)."""
    params = _params(query, what, query.since, query.until)
    n, median, longest = conn.execute(
        f"SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY e.end_t - e.start_t), "
        f"max(e.end_t - e.start_t) {_ROWS_OF}", params, prepare=False).fetchone()
    cited = _cited(conn.execute(f"SELECT e.partition_key, v.object_key, e.start_t, e.end_t {_ROWS_OF} "
                                f"ORDER BY e.end_t - e.start_t DESC, e.partition_key, e.start_t LIMIT {CITED}",
                                params, prepare=False).fetchall())
    return int(n), float(median or 0.0), float(longest or 0.0), cited


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _noun(class_name: str, n: int) -> str:
    return {"person": "person" if n == 1 else "people"}.get(class_name, class_name if n == 1 else class_name + "s")


def _who(query, n: int) -> str:
    """"people", "person in red"."""
    return _noun(query.class_name, n) + (f" in {query.colour}" if query.colour else "")


def _refs(citations: list[Citation]) -> str:
    return "".join(f"[{c.ref}]" for c in citations)


def answer_count(conn: psycopg.Connection, question: str, query) -> Answer:
    """The exact answer to a parsed counting question, with how it was counted and the rows it counted."""
    where = f" on camera {query.camera}" if query.camera else ""
    if query.what == "crossings":
        what = Counted("crossing", query.name, query.direction)
        n = sum(count for count, _ in hourly(conn, query, what).values())
        cited = first_rows(conn, query, what)
        way = {"in": "in through", "out": "out through", None: "across"}[query.direction]
        how = f"crossings of the line {query.name!r}" + (
            f", direction {query.direction}" if query.direction else ", both ways")
        text = (f"{n} {_who(query, n)} went {way} {query.name}{where}{query.span()} "
                f"(counted as {how}){_refs(cited)}.")
    elif query.what == "visits":
        what = Counted("visit", query.name)
        tallies = hourly(conn, query, what).values()
        n = sum(c for c, _ in tallies)
        again = min(sum(r for _, r in tallies), n - 1) if n else 0
        cited = first_rows(conn, query, what)
        text = (f"{_plural(n, 'visit')} to {query.name}{where}{query.span()}, by {n - again} "
                f"{_who(query, n - again)} (counted as entries into the zone){_refs(cited)}.")
    elif query.what in ("dwell", "longest"):
        what = Counted("visit", query.name)
        n, median, longest, cited = stays(conn, query, what)
        if not n:
            return Answer(question, f"Nobody stayed in {query.name}{where}{query.span()}.", [], generator="count")
        if query.what == "dwell":
            by = f" by {_who(query, 2)}" if query.colour else ""
            text = (f"{_plural(n, 'stay')} in {query.name}{by}{where}{query.span()}: median {median:.0f} s, "
                    f"longest {longest:.0f} s (the longest cited first){_refs(cited)}.")
        else:
            then = ", ".join(f"{c.end_s - c.start_s:.0f} s[{c.ref}]" for c in cited[1:])
            text = (f"The longest stay in {query.name}{where}{query.span()} was {longest:.0f} s, by the "
                    f"{_who(query, 1)} at [1]" + (f", then {then}" if then else "")
                    + f" ({_plural(n, 'stay')} in all).")
    elif query.what == "busiest_camera":
        what = Counted("track")
        per_camera = {c: n - r for c, (n, r) in hourly(conn, query, what, by="camera").items() if c and n}
        if not per_camera:
            return Answer(question, f"No {_who(query, 2)} were seen on any camera{query.span()}.", [],
                          generator="count")
        ranked = sorted(per_camera.items(), key=lambda item: (-item[1], item[0]))
        top, n = ranked[0]
        cited = first_rows(conn, replace(query, camera=top), what)
        others = "; ".join(f"{c}: {k}" for c, k in ranked[1:4])
        text = (f"Camera {top} saw the most {_who(query, 2)}{query.span()}: about {n}"
                + (f" (then {others})" if others else "") + f"{_refs(cited)}.")
    elif query.what == "busiest":
        what = Counted("track")
        hours = {hour: count for hour, (count, _) in hourly(conn, query, what).items() if count}
        if not hours:
            return Answer(question, f"No {_who(query, 2)} were seen{where}{query.span()}.", [], generator="count")
        hour, n = max(hours.items(), key=lambda item: (item[1], -item[0].timestamp()))
        cited = first_rows(conn, _within(query, hour), what)
        text = (f"The busiest hour{where}{query.span()} was {hour:%Y-%m-%d %H:00}-{(hour + _HOUR):%H:00} UTC, "
                f"with {n} {_who(query, n)} (tracks starting in that hour){_refs(cited)}.")
    else:
        what = Counted("track")
        tallies = hourly(conn, query, what).values()
        n = sum(c for c, _ in tallies)
        # a track likely repeats the one before it, which may lie outside the range or wear another colour (the
        # colour read off a fragment): at least one person stays counted, and a colour counts tracks
        repeats = min(sum(r for _, r in tallies), n - 1) if query.class_name == "person" and n and not query.colour \
            else 0
        cited = first_rows(conn, query, what)
        if repeats:
            text = (f"About {n - repeats} {_who(query, n - repeats)}{where}{query.span()}: {_plural(n, 'track')}, "
                    f"{_plural(repeats, 'of them', 'of them')} likely the same {query.class_name} seen again "
                    f"(starting where the one before ended, or dressed alike, within seconds){_refs(cited)}.")
        else:
            text = f"{n} {_who(query, n)}{where}{query.span()} (counted as distinct tracks){_refs(cited)}."
    return Answer(question, text, cited, generator="count")


def _within(query, hour: datetime):
    return replace(query, since=max(hour, query.since) if query.since else hour,
                   until=min(hour + _HOUR, query.until) if query.until else hour + _HOUR)
