"""A language model may read a counting question the rules do not (full profile): it is asked for the same
structured query the parser makes, as JSON over a closed vocabulary (the kinds of count, the classes, the lines
and zones and cameras the facts hold, the colours), and its answer is checked word by word before the query
runs as the same parameterised SQL. It never writes SQL, and its time words are read by ``time_range``, not
trusted as times. Output that does not validate is a refusal saying why.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, tzinfo

from video_analysis.search.questions import CLASS_WORDS, COLOUR_WORDS, CountQuery, time_range

# Questions about quantities the parser may miss ("what was the headcount at the door this afternoon?"):
# only these are handed to a model; everything else is searched, without a model's latency.
SOUNDS_COUNTED = re.compile(r"\b(?:number of|count|counted|headcount|tally|total|how often|busiest|longest|"
                            r"most people|fewest|footfall|occupancy)\b", re.IGNORECASE)
WHATS = ("people", "crossings", "visits", "dwell", "busiest", "longest", "busiest_camera")


def vocabulary(names: dict[str, str], cameras: set[str]) -> dict[str, list[str]]:
    """The words a model may use in its query."""
    return {"whats": list(WHATS), "classes": sorted(set(CLASS_WORDS.values())),
            "names": sorted(names) or ["(none)"], "cameras": sorted(cameras) or ["(none)"],
            "colours": sorted(set(COLOUR_WORDS.values()))}


def read_query(raw: str, names: dict[str, str], cameras: set[str], now: datetime, site: tzinfo
               ) -> CountQuery | str:
    """The query in a model's ``raw`` output, or why it is not one."""
    found = re.search(r"\{.*\}", raw or "", re.DOTALL)
    if not found:
        return "the language model gave no query (no JSON object)"
    try:
        data = json.loads(found.group(0))
    except json.JSONDecodeError as error:
        return f"the language model's query is not valid JSON ({error.msg})"
    if not isinstance(data, dict):
        return "the language model's query is not a JSON object"
    unknown = sorted(set(data) - {"what", "class", "name", "direction", "camera", "colour", "time"})
    if unknown:
        return f"the language model's query has keys outside the vocabulary: {', '.join(unknown)}"
    what, class_name = data.get("what"), data.get("class") or "person"
    name, direction, camera = data.get("name"), data.get("direction"), data.get("camera")
    colour, when = data.get("colour"), data.get("time")
    checks = [(what in WHATS, f"what {what!r}"), (class_name in CLASS_WORDS.values(), f"class {class_name!r}"),
              (name is None or name in names, f"name {name!r}"), (direction in (None, "in", "out"),
                                                                  f"direction {direction!r}"),
              (camera is None or camera in cameras, f"camera {camera!r}"),
              (colour is None or colour in COLOUR_WORDS.values(), f"colour {colour!r}"),
              (when is None or isinstance(when, str), f"time {when!r}")]
    wrong = [said for ok, said in checks if not ok]
    if wrong:
        return f"the language model's query names what the footage does not hold: {', '.join(wrong)}"
    needs = {"crossings": "crossing", "visits": "visit", "dwell": "visit", "longest": "visit"}.get(what)
    if needs and (name is None or names[name] != needs):
        return f"a count of {what} needs a {'line' if needs == 'crossing' else 'zone'} by name"
    since, until, said = time_range(when.lower(), now, site) if when else (None, None, "")
    query = CountQuery(what, class_name, name, direction if what == "crossings" else None, camera, since, until,
                       said, colour)
    return replace(query, camera=None) if what == "busiest_camera" else query
