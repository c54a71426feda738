"""attributes, embeddings, summaries and search on the real clips (offline profile).

Shared state, on purpose: both clips go through every stage once per module (``processed``), and the tests
read that state. A test that changes it (another profile's models, other rules, dropped indexes) puts the
stage back as ``processed`` left it before it returns, pass or fail (``_restore``), so every test sees the
same state whatever the order. Only ``camera_daily_reports`` rows, a table no other test reads, are left.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets import VIDEO_STAGES, attributes, embeddings, summaries
from configuration.settings import Settings
from orchestration.definitions import build_resources
from orchestration.failures import failure_reasons
from resources import ModelRegistryResource, ObjectStoreResource
from tests.helpers import (
    KITCHEN_KEY,
    PEOPLE_ON_SCREEN,
    SensorHarness,
    run_cli,
    sample_clips_processed,
    write_manifest,
)
from video_analysis.events.incident_rules import IncidentRules
from video_analysis.search import SearchFilters, search
from video_analysis.stages import summaries as summaries_stage
from video_analysis.store.db import Database, connect
from video_analysis.store.vector_index import description_index_name, index_name, summary_index_name

pytestmark = pytest.mark.slow

KITCHEN_RECORDED_AT = datetime(2026, 1, 15, 8, 0, tzinfo=timezone.utc)  # from its key


@dataclass(frozen=True)
class Processed:
    instance: DagsterInstance
    partitions: dict[str, str]  # "person" / "kitchen" -> partition key


@pytest.fixture(scope="module")
def processed(pg_dsn, person_clip, bottle_clip, tmp_path_factory):
    """Both clips through every stage, once for this module, in an emptied database.

    The environment (inbox, settle time, offline profile) holds for the whole module and is restored after it.
    """
    with sample_clips_processed(pg_dsn, person_clip, bottle_clip, tmp_path_factory.mktemp("inbox"),
                                tmp_path_factory.mktemp("dagster")) as (instance, partitions):
        yield Processed(instance, partitions)


def _restore(processed: Processed, clip: str, *stages) -> None:
    """Re-run ``stages`` for one clip as ``processed`` ran them (offline profile, default config)."""
    result = materialize(list(stages), partition_key=processed.partitions[clip], instance=processed.instance,
                         resources=build_resources(), raise_on_error=False)
    assert result.success, failure_reasons(result)


@pytest.fixture(scope="module")
def conn(pg_dsn, processed):
    with connect(pg_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def text_model():
    """(resolved checkpoint, embedder) of the offline profile's text embedder."""
    return ModelRegistryResource(profile="offline").load("text_embedder")


@pytest.fixture(scope="module")
def find(conn, text_model):
    model, embedder = text_model

    def run(query, **filters):
        return search(conn, query, embedder, model.name, SearchFilters(**filters), limit=10)

    return run


def test_searching_person_returns_the_people_at_the_right_times(find, processed):
    hits = find("person")
    # the detector also boxes an arm reaching into the bottle clip as a person: most hits are the crossings
    people = [h for h in hits if h.class_name == "person" and h.partition_key == processed.partitions["person"]]
    assert len(people) >= 6
    for hit in people:  # every hit lies within one of the crossings counted by eye
        assert any(start - 2 <= hit.start_s and hit.end_s <= end + 2 for start, end in PEOPLE_ON_SCREEN), hit


def test_searching_bottle_finds_the_bottle_clip_first(find, processed):
    hits = find("bottle")
    bottle_hits = [h for h in hits if h.class_name == "bottle"]
    assert len(bottle_hits) >= 3
    assert hits[:len(bottle_hits)] == bottle_hits  # the bottle tracks rank above everything else
    assert all(h.partition_key == processed.partitions["kitchen"] and h.text_rank is not None for h in bottle_hits)


def test_a_colour_filter_narrows_the_results(find, conn):
    everyone = find("person", class_name="person")
    in_gray = find("person", class_name="person", color="gray")
    assert 0 < len(in_gray) < len(everyone)
    keys = {(h.partition_key, h.track_id) for h in in_gray}
    assert keys <= {(h.partition_key, h.track_id) for h in everyone}
    for h in in_gray:
        colours = conn.execute("SELECT upper_color, lower_color FROM track_attributes "
                               "WHERE partition_key = %s AND track_id = %s", (h.partition_key, h.track_id)).fetchone()
        assert "gray" in colours


@pytest.fixture(params=["exact", "descriptions", "graph"])
def vector_path(request, monkeypatch):
    """Filters that narrow by video are searched exactly over few tracks, else through the graph over
    distinct descriptions, else (when too few of the nearest descriptions' tracks pass) through the graph
    of every track's vector: all three must give the same answers (on these few tracks no walk misses)."""
    from video_analysis.search import filters, retrievers

    monkeypatch.setattr(filters, "EXACT_BELOW", 10_000 if request.param == "exact" else 0)
    if request.param == "graph":  # as when the nearest descriptions' tracks did not fill the pool
        monkeypatch.setattr(retrievers, "described_tracks", lambda *args, **kwargs: None)
    return request.param


def test_a_filter_the_nearest_descriptions_miss_walks_every_tracks_graph(find, monkeypatch):
    """A query near one description and a filter that excludes its tracks: once the walked descriptions
    are spent, the tracks' own graph is walked, and the answers are those of the full walk."""
    from video_analysis.search import filters, retrievers

    walked = [(h.partition_key, h.track_id) for h in find("bottle", class_name="person")]
    assert walked  # people are far from "bottle", but within no floor here
    monkeypatch.setattr(filters, "EXACT_BELOW", 0)
    monkeypatch.setattr(retrievers, "DESCRIPTIONS_WALKED", 1)
    assert [(h.partition_key, h.track_id) for h in find("bottle", class_name="person")] == walked


def test_camera_and_time_filters(find, processed, conn, vector_path, text_model):
    from video_analysis.search.filters import narrow

    params = {**SearchFilters(camera="kitchen").__dict__}
    assert narrow(conn, SearchFilters(camera="kitchen"), params).few == (vector_path == "exact")
    kitchen = find("bottle", camera="kitchen")
    assert kitchen and {h.partition_key for h in kitchen} == {processed.partitions["kitchen"]}
    assert all(h.starts_at.date().isoformat() == "2026-01-15" for h in kitchen)
    assert find("person", camera="garage") == []

    # A track is in the window [since, until] when it is on screen at some moment of it: it ends at or after
    # `since` and starts at or before `until` (recorded_at from the key + the track's times).
    since_s, until_s = 10, 20
    since, until = KITCHEN_RECORDED_AT + timedelta(seconds=since_s), KITCHEN_RECORDED_AT + timedelta(seconds=until_s)
    tracks = conn.execute("SELECT track_id, first_t, last_t FROM tracks WHERE partition_key = %s "
                          "AND class_name = 'bottle'", (processed.partitions["kitchen"],)).fetchall()
    before = {t for t, _, last in tracks if last < since_s}
    after = {t for t, first, _ in tracks if first > until_s}
    inside = {t for t, _, _ in tracks} - before - after
    assert before and inside and after and len(tracks) <= 10, tracks  # the window leaves tracks out on both sides

    def ids(**window):
        hits = find("bottle", camera="kitchen", class_name="bottle", **window)
        assert all(h.vector_rank is not None for h in hits)  # found by the vector retriever on this path too
        return {h.track_id for h in hits}

    assert ids() == inside | before | after  # no window: every bottle track
    assert ids(since=since) == inside | after  # the lower bound alone leaves out what ended before it
    assert ids(until=until) == inside | before  # the upper bound alone leaves out what started after it
    assert ids(since=since, until=until) == inside
    window = find("bottle", camera="kitchen", class_name="bottle", since=since, until=until)
    assert all(h.end_s >= since_s and h.start_s <= until_s for h in window)
    assert ids(since=KITCHEN_RECORDED_AT + timedelta(hours=1)) == set()  # after the footage: nothing


def test_summaries_and_incident_filter(processed, conn, find):
    instance, partitions = processed.instance, processed.partitions
    rows = conn.execute("SELECT partition_key, safety_score, incident_count, summary FROM summaries").fetchall()
    assert {r[0] for r in rows} == set(partitions.values())  # one summary per processed video
    person_summary = next(r for r in rows if r[0] == partitions["person"])
    # six people (counted by eye) in seven tracks: the tracker's fragment of one is said to be likely a repeat
    said = re.match(r"139 seconds of the footage: (\d+) people( and [^.(]*)? tracked \(about 6 different people: "
                    r"(\d+) tracks? likely the same person seen again\)\.", person_summary[3])
    assert said and int(said.group(1)) - int(said.group(3)) == 6, person_summary[3]
    # Nothing is left behind in this clip, and nobody stays 50 s (a person works at the table for ~25 s): the
    # default rules find no incident.
    assert person_summary[1:3] == (100, 0) and "No incidents." in person_summary[3], person_summary[3]

    # A stricter loitering rule on the real clip: the people who stand 20-25 s at the table loiter.
    config = {"ops": {"summaries": {"config": {"loiter_seconds": 20}}}}
    try:
        result = materialize([summaries], partition_key=partitions["person"], instance=instance,
                             resources=build_resources(), run_config=config, raise_on_error=False)
        assert result.success, failure_reasons(result)
        score, count, incidents = conn.execute("SELECT safety_score, incident_count, incidents FROM summaries "
                                               "WHERE partition_key = %s", (partitions["person"],)).fetchone()
        assert count >= 1 and {i["type"] for i in incidents} == {"loitering"}
        assert score == round(100 - 10 * sum(i["confidence"] for i in incidents)) < 100
        loiterers = find("person", incident="loitering")
        assert {h.track_id for h in loiterers} == {t for i in incidents for t in i["track_ids"]}
        # each loiterer is one of the people who stand at the table for 20-25 s, found at their own moment
        for hit in loiterers:
            assert any(start - 2 <= hit.start_s and hit.end_s <= end + 2 for start, end in PEOPLE_ON_SCREEN), hit
    finally:
        _restore(processed, "person", summaries)  # back to the default rules
    assert conn.execute("SELECT summary FROM summaries WHERE partition_key = %s",
                        (partitions["person"],)).fetchone() == (person_summary[3],)


def test_embeddings_are_stored_with_model_and_dimension(conn, processed):
    rows = conn.execute("SELECT kind, model_name, dim, count(*), max(abs(vector_norm(embedding) - 1)) "
                        "FROM embeddings GROUP BY 1, 2, 3 ORDER BY 1").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("summary_text", "all-minilm-l6-v2", 384),
                                                  ("track_text", "all-minilm-l6-v2", 384)]
    assert all(r[4] < 1e-3 for r in rows)
    indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%'")]
    assert indexes and "hnsw" in indexes[0] and "vector(384)" in indexes[0]


def test_rerunning_any_stage_leaves_identical_rows(processed, conn):
    instance, partitions = processed.instance, processed.partitions

    def snapshot():
        return (
            conn.execute("SELECT track_id, description FROM track_attributes ORDER BY 1, 2").fetchall(),
            conn.execute("SELECT kind, track_id, content, embedding::text FROM embeddings ORDER BY 1, 2, 3").fetchall(),
            conn.execute("SELECT partition_key, summary FROM summaries ORDER BY 1").fetchall(),
            conn.execute("SELECT content, embedding::text FROM description_vectors ORDER BY 1").fetchall(),
        )

    before = snapshot()
    for stage in (attributes, embeddings, summaries):
        result = materialize([stage], partition_key=partitions["kitchen"], instance=instance,
                             resources=build_resources(), raise_on_error=False)
        assert result.success, failure_reasons(result)
        assert all(e.passed for e in result.get_asset_check_evaluations())
    assert snapshot() == before
    distinct = conn.execute("SELECT count(DISTINCT content) FROM embeddings WHERE kind = 'track_text'").fetchone()
    assert before[3] and (len(before[3]),) == distinct  # each description's vector once


def test_search_from_the_command_line(processed):
    result = run_cli("search", "bottle", "--camera", "kitchen", "--kind", "track", "--limit", "3", "--json",
                     "--local", check=True)
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(h["camera"] == "kitchen" and h["class_name"] == "bottle" for h in hits)
    assert all(h["kind"] == "track" and h["text"] and "thumbnail_url" not in h for h in hits)  # no service links
    assert "nothing matches" in run_cli("search", "a red car", "--local", check=True).stdout


def test_full_profile_stores_image_embeddings_that_text_queries_reach(processed, conn, tiny_clip, tmp_path):
    import yaml

    from models.registry import MANIFEST
    from video_analysis.store.vector_index import drop_index
    from video_analysis.vision.embedders import load_embedder

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    checkpoints = {**shipped, "tiny-clip": {"task": "image_embedder", "backend": "transformers-clip",
                                            "source": str(tiny_clip), "version": "tiny-clip-1"}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {"detector": "ssd-mobilenet-v2-coco",
                                                               "text_embedder": "all-minilm-l6-v2",
                                                               "image_embedder": "tiny-clip"}})
    models = ModelRegistryResource(profile="full", manifest=str(manifest))
    instance, partitions = processed.instance, processed.partitions
    try:
        result = materialize([embeddings], partition_key=partitions["kitchen"], instance=instance,
                             resources={**build_resources(), "models": models}, raise_on_error=False)
        assert result.success, failure_reasons(result)
        assert result.asset_materializations_for_node("embeddings")[0].metadata["image_model"].value == "tiny-clip"
        tracks, images = conn.execute(
            "SELECT (SELECT count(*) FROM tracks WHERE partition_key = %(p)s), "
            "(SELECT count(*) FROM embeddings WHERE partition_key = %(p)s AND kind = 'track_image' AND dim = 16)",
            {"p": partitions["kitchen"]}).fetchone()
        assert images == tracks > 0
        assert index_name("tiny-clip") in {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}

        text_model, text_embedder = models.load("text_embedder")
        hits = search(conn, "bottle", text_embedder, text_model.name, SearchFilters(camera="kitchen"),
                      image_embedder=load_embedder("transformers-clip", tiny_clip), image_model_name="tiny-clip")
        assert hits and all(h.image_rank is not None for h in hits)
    finally:  # back to text vectors only, and no index of a model that is gone
        _restore(processed, "kitchen", embeddings)
        with conn.transaction():
            drop_index(conn, "tiny-clip")
    assert conn.execute("SELECT count(*) FROM embeddings WHERE kind = 'track_image'").fetchone() == (0,)


def test_indexes_can_be_dropped_for_a_backfill_and_rebuilt(processed, conn, find):
    from video_analysis.store.vector_index import ensure_index

    def hnsw_indexes():
        return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%' "
                                           "OR indexname LIKE 'descriptions_ivfflat%'")}

    before = [(h.partition_key, h.track_id) for h in find("bottle")]
    model_indexes = {index_name("all-minilm-l6-v2"), summary_index_name("all-minilm-l6-v2"),
                     description_index_name("all-minilm-l6-v2")}
    assert hnsw_indexes() == model_indexes
    try:
        assert "drop: vector indexes of all-minilm-l6-v2" in run_cli("index", "drop", check=True).stdout
        assert hnsw_indexes() == set()
        assert [(h.partition_key, h.track_id) for h in find("bottle")] == before  # exact scan meanwhile
        assert ensure_index(conn, "all-minilm-l6-v2", 384) is False  # the embeddings stage does not re-create it
        assert hnsw_indexes() == set()
    finally:  # the rebuild also lifts the hold on index builds
        run_cli("index", "rebuild", check=True)
    assert hnsw_indexes() == model_indexes
    assert conn.execute("SELECT count(*) FROM vector_index_holds").fetchone() == (0,)
    assert [(h.partition_key, h.track_id) for h in find("bottle")] == before


def test_full_profile_adds_age_gender_and_depth(processed, conn, tiny_attribute_models, tmp_path):
    import yaml

    from models.registry import MANIFEST

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    tiny = {
        "tiny-age": ("age_classifier", "transformers-image-classification", tiny_attribute_models["age"]),
        "tiny-gender": ("gender_classifier", "transformers-image-classification", tiny_attribute_models["gender"]),
        "tiny-depth": ("depth_estimator", "transformers-depth", tiny_attribute_models["depth"]),
    }
    checkpoints = {**shipped, **{name: {"task": task, "backend": backend, "source": str(path), "version": name}
                                 for name, (task, backend, path) in tiny.items()}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {
        "detector": "ssd-mobilenet-v2-coco", "text_embedder": "all-minilm-l6-v2",
        **{task: name for name, (task, _, _) in tiny.items()}}})
    instance, partitions = processed.instance, processed.partitions
    query = "SELECT track_id, extras, description FROM track_attributes WHERE partition_key = %s ORDER BY 1"
    offline_rows = conn.execute(query, (partitions["person"],)).fetchall()
    try:
        result = materialize([attributes], partition_key=partitions["person"], instance=instance,
                             raise_on_error=False,
                             resources={**build_resources(),
                                        "models": ModelRegistryResource(profile="full", manifest=str(manifest))})
        assert result.success, failure_reasons(result)
        metadata = result.asset_materializations_for_node("attributes")[0].metadata
        assert metadata["model_attributes"].value == ["age", "gender", "relative_depth"]
        assert metadata["absent"].value == {}

        rows = conn.execute(query, (partitions["person"],)).fetchall()
        assert rows and [r[0] for r in rows] == [r[0] for r in offline_rows]
        for _, extras, description in rows:
            assert extras["gender"]["label"] in {"female", "male"} and 0 < extras["gender"]["score"] <= 1
            assert extras["age"]["label"] in {"0-19", "20-39", "40-59", "60+"}
            assert 0 <= extras["relative_depth"] <= 1
            assert f"apparently {extras['gender']['label']} {extras['age']['label']}" in description
    finally:  # back to the offline profile's attributes, and what is derived from them
        _restore(processed, "person", attributes, embeddings, summaries)
    restored = conn.execute(query, (partitions["person"],)).fetchall()
    assert [r[0] for r in restored] == [r[0] for r in offline_rows]
    assert all(extras == {} and "apparently" not in description for _, extras, description in restored)
    # Not `restored == offline_rows`: a re-run may name a colour differently (OpenCV's global RNG seeds the
    # colour clustering; see test_dominant_colour_does_not_depend_on_what_ran_before).


def test_offline_profile_reports_model_attributes_absent(processed):
    instance, partitions = processed.instance, processed.partitions
    result = materialize([attributes], partition_key=partitions["kitchen"], instance=instance,
                         resources=build_resources(), raise_on_error=False)
    absent = result.asset_materializations_for_node("attributes")[0].metadata["absent"].value
    assert set(absent) == {"age", "gender", "relative_depth"}
    assert all("profile 'offline' names no checkpoint" in reason for reason in absent.values())


def test_full_profile_vlm_output_is_validated_and_the_template_stands_when_invalid(processed, conn, tiny_vlm,
                                                                                    tmp_path):
    import yaml

    from models.registry import MANIFEST

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    checkpoints = {**shipped, "tiny-vlm": {"task": "summarizer", "backend": "transformers-image-text-to-text",
                                          "source": str(tiny_vlm), "version": "tiny-vlm-1"}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {"text_embedder": "all-minilm-l6-v2",
                                                               "summarizer": "tiny-vlm"}})
    instance, partitions = processed.instance, processed.partitions
    before = conn.execute("SELECT summary FROM summaries WHERE partition_key = %s", (partitions["kitchen"],)).fetchone()
    try:
        result = materialize([summaries], partition_key=partitions["kitchen"], instance=instance,
                             raise_on_error=False,
                             resources={**build_resources(),
                                        "models": ModelRegistryResource(profile="full", manifest=str(manifest))})
        assert result.success, failure_reasons(result)
        metadata = result.asset_materializations_for_node("summaries")[0].metadata
        # A random-weight model writes no valid JSON: the templated summary stands and the metadata says why.
        assert metadata["generator"].value == "template"
        assert metadata["vlm"].value.startswith("invalid output (")
        after = conn.execute("SELECT summary, generator FROM summaries WHERE partition_key = %s",
                             (partitions["kitchen"],)).fetchone()
        assert after == (before[0], "template")
    finally:  # should the model ever answer valid JSON, its summary does not outlive this test
        _restore(processed, "kitchen", summaries)


class AnswersWithJSON:
    """Stands in for the third-party vision-language model: records what it is shown, answers valid JSON."""

    def __init__(self, answer: str):
        self.answer = answer
        self.calls: list[tuple[list, dict]] = []

    def write(self, keyframes_bgr, facts):
        self.calls.append((keyframes_bgr, facts))
        return self.answer


def test_a_valid_vlm_summary_replaces_the_template_and_names_its_model(processed, conn, pg_dsn, text_model):
    key = processed.partitions["kitchen"]
    query = "SELECT summary, generator, safety_score, incidents FROM summaries WHERE partition_key = %s"
    templated, generator, score, incidents = conn.execute(query, (key,)).fetchone()
    assert generator == "template"
    written = "Three water bottles stand on a table; a hand takes some away and later puts them back."
    model = AnswersWithJSON("Sure, here it is:\n" + json.dumps({"summary": written}) + "\nAnything else?")
    stamp_model, embedder = text_model
    try:
        result = summaries_stage.run(Database(pg_dsn), key, ObjectStoreResource().store(), embedder,
                               stamp_model.stamp, rules=IncidentRules(), zones_file=Settings.from_env().zones_path,
                               summarizer=model, summarizer_name="stub-vlm-2b")
        # the model saw keyframes of the clip and the rules' facts, the templated summary among them
        [(frames, facts)] = model.calls
        assert 1 <= len(frames) <= 4 and all(f.shape == (360, 640, 3) for f in frames)
        assert facts["summary"] == templated and facts["safety_score"] == score
        assert (result.metadata["summary"], result.metadata["generator"], result.metadata["vlm"]) == (
            written, "stub-vlm-2b", "valid JSON")
        # stored: the model's text under the model's name; the score and incidents still come from the rules
        assert conn.execute(query, (key,)).fetchone() == (written, "stub-vlm-2b", score, incidents)
        [(content,)] = conn.execute("SELECT content FROM embeddings WHERE partition_key = %s "
                                    "AND kind = 'summary_text'", (key,)).fetchall()
        assert content == written  # search reaches the summary that is shown
    finally:
        _restore(processed, "kitchen", summaries)
    assert conn.execute(query, (key,)).fetchone() == (templated, "template", score, incidents)


def test_camera_daily_report_rolls_up_the_days_segments(processed, conn):
    from assets import camera_daily_report

    instance, partitions = processed.instance, processed.partitions
    summary = conn.execute("SELECT safety_score, incident_count FROM summaries WHERE partition_key = %s",
                           (partitions["kitchen"],)).fetchone()
    for _ in range(2):  # a re-run replaces the day's rows
        result = materialize([camera_daily_report], partition_key="2026-01-15", instance=instance,
                             resources=build_resources(), raise_on_error=False)
        assert result.success, failure_reasons(result)
    rows = conn.execute("SELECT camera, day::text, videos, footage_minutes, mean_safety_score, "
                        "min_safety_score, incident_count FROM camera_daily_reports").fetchall()
    # The person clip has no camera in its key; only the kitchen segment of 2026-01-15 counts.
    assert rows == [("kitchen", "2026-01-15", 1, pytest.approx(0.66, abs=0.01), float(summary[0]), summary[0],
                     summary[1])]
    materialize([camera_daily_report], partition_key="2026-01-16", instance=instance, resources=build_resources())
    assert conn.execute("SELECT count(*) FROM camera_daily_reports WHERE day = '2026-01-16'").fetchone()[0] == 0


def test_a_key_re_uploaded_counts_once_and_search_shows_its_newest_version(processed, conn, find, bottle_clip):
    """Runs last in this module: it adds a second version of the kitchen key, and takes it away after."""
    from assets import camera_daily_report

    instance, old = processed.instance, processed.partitions["kitchen"]
    inbox = ObjectStoreResource().store().root
    shutil.copyfile(bottle_clip, inbox / KITCHEN_KEY)  # uploaded again: a new version of the same key
    [new] = SensorHarness(instance).tick()
    try:
        result = materialize(VIDEO_STAGES, partition_key=new, instance=instance, resources=build_resources(),
                             raise_on_error=False)
        assert result.success, failure_reasons(result)
        assert conn.execute("SELECT superseded_by FROM videos WHERE partition_key = %s", (old,)).fetchone() == (new,)
        materialize([camera_daily_report], partition_key="2026-01-15", instance=instance, resources=build_resources())
        assert conn.execute("SELECT videos FROM camera_daily_reports WHERE camera = 'kitchen'").fetchone() == (1,)

        kitchen = {h.partition_key for h in find("bottle") if h.object_key == KITCHEN_KEY}
        assert kitchen == {new}
        assert {h.partition_key for h in find("bottle", history=True) if h.object_key == KITCHEN_KEY} == {old, new}
        assert f"superseded by {new}" in run_cli("status", check=True).stdout
    finally:
        conn.execute("DELETE FROM videos WHERE partition_key = %s", (new,))
        conn.execute("UPDATE videos SET superseded_by = NULL WHERE partition_key = %s", (old,))


GOLDEN_QUERIES = [("person", {}), ("bottle", {}), ("someone hanging around", {}), ("a person in black", {}),
                  ("gray trousers", {"class_name": "person"}), ("bottle", {"camera": "kitchen"}),
                  ("person", {"kind": "summary"}), ("bottle", {"kind": "track"})]
GOLDEN = Path(__file__).with_name("search_golden.json")


def _ranked_hits(pg_dsn, text_model) -> dict[str, list]:
    """The fused hits (tracks, incidents, summaries) the service and the CLI return for each golden query: what
    a user sees ranked, by object key (partition keys carry a file's modification time)."""
    from service.app import ServiceContext
    from service.app import find as find_hits
    from video_analysis.store.db import PooledDatabase

    model, embedder = text_model
    database = PooledDatabase(Settings.from_env().database_url or pg_dsn, max_size=4)
    context = ServiceContext(database=database, store=ObjectStoreResource().store(), text_embedder=embedder,
                             text_model_name=model.name, min_similarity=0.3, min_summary_similarity=0.3,
                             min_incident_similarity=0.4)
    try:
        found = {}
        for query, options in GOLDEN_QUERIES:
            kind = options.pop("kind", None) if options else None
            hits = find_hits(context, query, SearchFilters(**options), kind, limit=8)
            if kind:
                options["kind"] = kind
            found[f"{query} {json.dumps(options, sort_keys=True)}"] = [
                [h["object_key"], h["kind"], h.get("track_id"), h.get("incident_type"), round(h["start_s"], 1),
                 round(h["score"], 5)] for h in hits]
        return found
    finally:
        database.close()


def test_ranked_hits_of_fixed_queries_are_as_recorded(pg_dsn, processed, text_model):
    """Written before search moved into a package of its own: the ranked hits must not change with it
    (REELGRAPH_RECORD_GOLDEN=1 records them anew, for a change that means to change them)."""
    found = _ranked_hits(pg_dsn, text_model)
    if os.environ.get("REELGRAPH_RECORD_GOLDEN"):
        GOLDEN.write_text("{\n" + ",\n".join(f" {json.dumps(query)}: [\n" + ",\n".join(
            f"  {json.dumps(hit)}" for hit in hits) + "\n ]" for query, hits in found.items()) + "\n}\n")
    assert found == json.loads(GOLDEN.read_text())
    assert sum(len(hits) for hits in found.values()) >= 30


def test_counting_questions_are_answered_exactly_from_a_line_drawn_across_the_room(processed, pg_dsn, text_model,
                                                                                    monkeypatch, tmp_path):
    """A line across the room of the person clip (six people walk through it, left to right, one at a time):
    the summaries stage counts its crossings, and questions about counts are answered with the number, how
    it was counted, and the moments cited; a place the zones file does not hold is "cannot answer"."""
    from service.context import ServiceContext, answer
    from video_analysis.store.db import PooledDatabase

    zones = tmp_path / "zones.yaml"
    zones.write_text('cameras:\n  "*":\n    - {name: aisle, line: [[0.7, 0.0], [0.7, 1.0]], in: left}\n')
    monkeypatch.setenv("REELGRAPH_ZONES", str(zones))
    person = processed.partitions["person"]
    try:
        _restore(processed, "person", summaries)  # the zones file changed: the summaries stage counts again
        with connect(pg_dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT track_id, start_t, direction FROM counting_events WHERE partition_key = %s "
                                "AND kind = 'crossing' AND name = 'aisle' ORDER BY start_t", (person,)).fetchall()
        assert [direction for _, _, direction in rows] == ["in"] * 6, rows  # each walks it left to right once
        for (_, at, _), (start, end) in zip(rows, PEOPLE_ON_SCREEN, strict=True):
            assert start <= at <= end, (at, start, end)  # one crossing in each person's time on screen

        model, embedder = text_model
        database = PooledDatabase(pg_dsn, max_size=2)
        context = ServiceContext(database=database, store=ObjectStoreResource().store(), text_embedder=embedder,
                                 text_model_name=model.name)
        try:
            counted = answer(context, "How many people came in through the aisle today?", SearchFilters())
            assert counted["answer"].startswith("6 people went in through aisle today (counted as crossings of "
                                                "the line 'aisle', direction in)[1][2][3][4][5]"), counted
            assert counted["generator"] == "count" and len(counted["citations"]) == 5
            assert all(c["partition_key"] == person and c["clip_url"] for c in counted["citations"])
            # over both clips: the six crossings' tracks, a fragment of one of them, and the arm the kitchen
            # clip shows: the fragment (it starts where a track ended) is said to be likely the same person
            with connect(pg_dsn, autocommit=True) as conn:
                tracks = conn.execute("SELECT count(*) FROM tracks WHERE class_name = 'person'").fetchone()[0]
            people = answer(context, "how many people?", SearchFilters())["answer"]
            assert people.startswith(f"About {tracks - 1} people: {tracks} tracks, 1 of them likely the same person "
                                     "seen again"), people
            unknown = answer(context, "how many people came in through the back door?", SearchFilters())["answer"]
            assert unknown.startswith("Cannot answer that from the footage") and "aisle" in unknown, unknown
            searched = answer(context, "was anyone hanging around?", SearchFilters())
            assert searched["generator"] != "count"  # not a counting question: answered from search, as before
        finally:
            database.close()
    finally:
        monkeypatch.delenv("REELGRAPH_ZONES")
        _restore(processed, "person", summaries)
