"""attributes, embeddings, summaries and search on the real clips (offline profile)."""

import json
import shutil
from datetime import datetime, timezone

import pytest
from dagster import instance_for_test, materialize

from assets import VIDEO_STAGES, attributes, embeddings, summaries
from orchestration.definitions import build_resources
from orchestration.results import failure_reasons
from resources import ModelRegistryResource
from tests.assets.test_vision_stages import PEOPLE_ON_SCREEN
from tests.orchestration.sensor_ticks import SensorHarness
from video_analysis.db import connect
from video_analysis.search import SearchFilters, search

pytestmark = pytest.mark.slow

KITCHEN_KEY = "cameras/kitchen/2026-01-15T08-00-00.mp4"


@pytest.fixture(scope="module")
def processed(pg_dsn, person_clip, bottle_clip, tmp_path_factory):
    """Both clips through every stage, once for this module; yields (instance, partitions by clip)."""
    inbox = tmp_path_factory.mktemp("inbox")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REELGRAPH_INBOX", str(inbox))
        patch.setenv("REELGRAPH_SETTLE_SECONDS", "0")
        patch.setenv("REELGRAPH_MODEL_PROFILE", "offline")
        with connect(pg_dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE videos CASCADE")
        (inbox / "cameras/kitchen").mkdir(parents=True)
        shutil.copyfile(person_clip, inbox / "one-by-one-person-detection.mp4")
        shutil.copyfile(bottle_clip, inbox / KITCHEN_KEY)
        folder = tmp_path_factory.mktemp("dagster")
        with instance_for_test(temp_dir=str(folder)) as instance:
            partitions = SensorHarness(instance).tick()
            for partition in partitions:
                result = materialize(VIDEO_STAGES, partition_key=partition, instance=instance,
                                     resources=build_resources(), raise_on_error=False)
                assert result.success, failure_reasons(result)
            by_clip = {("person" if p.startswith("one-by-one") else "kitchen"): p for p in partitions}
            yield instance, by_clip, patch


@pytest.fixture(scope="module")
def conn(pg_dsn, processed):
    with connect(pg_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def find(conn):
    model, embedder = ModelRegistryResource(profile="offline").load("text_embedder")

    def run(query, **filters):
        return search(conn, query, embedder, model.name, SearchFilters(**filters), limit=10)

    return run


def test_searching_person_returns_the_people_at_the_right_times(find, processed):
    hits = find("person")
    assert hits and hits[0].partition_key == processed[1]["person"]
    people = [h for h in hits if h.class_name == "person"]
    assert len(people) >= 6
    for hit in people:  # every hit lies within one of the crossings counted by eye
        assert any(start - 2 <= hit.start_s and hit.end_s <= end + 2 for start, end in PEOPLE_ON_SCREEN), hit


def test_searching_bottle_finds_the_bottle_clip_first(find, processed):
    hits = find("bottle")
    bottle_hits = [h for h in hits if h.partition_key == processed[1]["kitchen"]]
    assert len(bottle_hits) >= 3
    assert hits[:len(bottle_hits)] == bottle_hits  # the bottle clip's tracks rank above everything else
    assert all(h.class_name == "bottle" and h.text_rank is not None for h in bottle_hits)


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


def test_camera_and_time_filters(find, processed):
    kitchen = find("bottle", camera="kitchen")
    assert kitchen and {h.partition_key for h in kitchen} == {processed[1]["kitchen"]}
    assert all(h.starts_at.date().isoformat() == "2026-01-15" for h in kitchen)
    window = find("bottle", since=datetime(2026, 1, 15, 8, 0, 30, tzinfo=timezone.utc),
                  until=datetime(2026, 1, 15, 8, 0, 45, tzinfo=timezone.utc))
    assert window and all(h.end_s >= 30 for h in window)
    assert find("person", camera="garage") == []


def test_summaries_and_incident_filter(processed, conn, find):
    instance, partitions, _ = processed
    rows = conn.execute("SELECT partition_key, safety_score, incident_count, summary FROM summaries").fetchall()
    assert {r[0] for r in rows} == set(partitions.values())  # one summary per processed video
    person_summary = next(r for r in rows if r[0] == partitions["person"])
    assert "139 seconds" in person_summary[3] and "people tracked" in person_summary[3]

    # A stricter loitering rule on the real clip: the person who stands ~25 s at the table loiters.
    config = {"ops": {"summaries": {"config": {"loiter_seconds": 20}}}}
    result = materialize([summaries], partition_key=partitions["person"], instance=instance,
                         resources=build_resources(), run_config=config, raise_on_error=False)
    assert result.success, failure_reasons(result)
    score, count, incidents = conn.execute("SELECT safety_score, incident_count, incidents FROM summaries "
                                           "WHERE partition_key = %s", (partitions["person"],)).fetchone()
    assert count >= 1 and score == 100 - 10 * count and {i["type"] for i in incidents} == {"loitering"}
    loiterers = find("person", incident="loitering")
    assert {h.track_id for h in loiterers} == {t for i in incidents for t in i["track_ids"]}
    start, end = PEOPLE_ON_SCREEN[4]  # the fifth person stands at the table for about 25 s
    assert [(h.start_s >= start - 2, h.end_s <= end + 2) for h in loiterers] == [(True, True)]


def test_embeddings_are_stored_with_model_and_dimension(conn, processed):
    rows = conn.execute("SELECT kind, model_name, dim, count(*), max(abs(vector_norm(embedding) - 1)) "
                        "FROM embeddings GROUP BY 1, 2, 3 ORDER BY 1").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("summary_text", "all-minilm-l6-v2", 384),
                                                  ("track_text", "all-minilm-l6-v2", 384)]
    assert all(r[4] < 1e-3 for r in rows)
    indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%'")]
    assert indexes and "hnsw" in indexes[0] and "vector(384)" in indexes[0]


def test_rerunning_any_stage_leaves_identical_rows(processed, conn):
    instance, partitions, _ = processed

    def snapshot():
        return (
            conn.execute("SELECT track_id, description FROM track_attributes ORDER BY 1, 2").fetchall(),
            conn.execute("SELECT kind, track_id, content, embedding::text FROM embeddings ORDER BY 1, 2, 3").fetchall(),
            conn.execute("SELECT partition_key, summary FROM summaries ORDER BY 1").fetchall(),
        )

    before = snapshot()
    for stage in (attributes, embeddings, summaries):
        result = materialize([stage], partition_key=partitions["kitchen"], instance=instance,
                             resources=build_resources(), raise_on_error=False)
        assert result.success, failure_reasons(result)
        assert all(e.passed for e in result.get_asset_check_evaluations())
    assert snapshot() == before


def test_search_from_the_command_line(processed):
    from tests.test_cli import run

    result = run("search", "bottle", "--camera", "kitchen", "--limit", "3", "--json", check=True)
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(h["camera"] == "kitchen" and h["class_name"] == "bottle" for h in hits)
    assert all(h["thumbnail"].endswith(".jpg") for h in hits)


def test_full_profile_stores_image_embeddings_that_text_queries_reach(processed, conn, tiny_clip, tmp_path):
    import yaml

    from models.registry import MANIFEST
    from tests.conftest import write_manifest
    from video_analysis.embeddings import load_embedder

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    checkpoints = {**shipped, "tiny-clip": {"task": "image_embedder", "backend": "transformers-clip",
                                            "source": str(tiny_clip), "version": "tiny-clip-1"}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {"detector": "ssd-mobilenet-v2-coco",
                                                               "text_embedder": "all-minilm-l6-v2",
                                                               "image_embedder": "tiny-clip"}})
    models = ModelRegistryResource(profile="full", manifest=str(manifest))
    instance, partitions, _ = processed
    result = materialize([embeddings], partition_key=partitions["kitchen"], instance=instance,
                         resources={**build_resources(), "models": models}, raise_on_error=False)
    assert result.success, failure_reasons(result)
    assert result.asset_materializations_for_node("embeddings")[0].metadata["image_model"].value == "tiny-clip"
    tracks, images = conn.execute(
        "SELECT (SELECT count(*) FROM tracks WHERE partition_key = %(p)s), "
        "(SELECT count(*) FROM embeddings WHERE partition_key = %(p)s AND kind = 'track_image' AND dim = 16)",
        {"p": partitions["kitchen"]}).fetchone()
    assert images == tracks > 0
    assert any("embeddings_hnsw_tiny_clip" in r[0] for r in conn.execute("SELECT indexname FROM pg_indexes"))

    text_model, text_embedder = models.load("text_embedder")
    hits = search(conn, "bottle", text_embedder, text_model.name, SearchFilters(camera="kitchen"),
                  image_embedder=load_embedder("transformers-clip", tiny_clip), image_model_name="tiny-clip")
    assert hits and all(h.image_rank is not None for h in hits)


def test_indexes_can_be_dropped_for_a_backfill_and_rebuilt(processed, conn, find):
    from tests.test_cli import run

    def hnsw_indexes():
        return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%'")}

    before = [(h.partition_key, h.track_id) for h in find("bottle")]
    assert "drop: HNSW indexes of all-minilm-l6-v2" in run("index", "drop", check=True).stdout
    assert hnsw_indexes() == set()
    assert [(h.partition_key, h.track_id) for h in find("bottle")] == before  # exact scan meanwhile
    from video_analysis.vector_index import ensure_index

    assert ensure_index(conn, "all-minilm-l6-v2", 384) is False  # the embeddings stage does not re-create it
    assert hnsw_indexes() == set()
    run("index", "rebuild", check=True)
    assert "embeddings_hnsw_all_minilm_l6_v2" in hnsw_indexes()


def test_full_profile_adds_age_gender_and_depth(processed, conn, tiny_attribute_models, tmp_path):
    import yaml

    from models.registry import MANIFEST
    from tests.conftest import write_manifest

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
    instance, partitions, _ = processed
    result = materialize([attributes], partition_key=partitions["person"], instance=instance, raise_on_error=False,
                         resources={**build_resources(),
                                    "models": ModelRegistryResource(profile="full", manifest=str(manifest))})
    assert result.success, failure_reasons(result)
    metadata = result.asset_materializations_for_node("attributes")[0].metadata
    assert metadata["model_attributes"].value == ["age", "gender", "relative_depth"]
    assert metadata["absent"].value == {}

    rows = conn.execute("SELECT extras, description FROM track_attributes WHERE partition_key = %s",
                        (partitions["person"],)).fetchall()
    assert rows
    for extras, description in rows:
        assert extras["gender"]["label"] in {"female", "male"} and 0 < extras["gender"]["score"] <= 1
        assert extras["age"]["label"] in {"0-19", "20-39", "40-59", "60+"}
        assert 0 <= extras["relative_depth"] <= 1
        assert f"apparently {extras['gender']['label']} {extras['age']['label']}" in description


def test_offline_profile_reports_model_attributes_absent(processed):
    instance, partitions, _ = processed
    result = materialize([attributes], partition_key=partitions["kitchen"], instance=instance,
                         resources=build_resources(), raise_on_error=False)
    absent = result.asset_materializations_for_node("attributes")[0].metadata["absent"].value
    assert set(absent) == {"age", "gender", "relative_depth"}
    assert all("profile 'offline' names no checkpoint" in reason for reason in absent.values())


def test_full_profile_vlm_output_is_validated_and_the_template_stands_when_invalid(processed, conn, tiny_vlm,
                                                                                    tmp_path):
    import yaml

    from models.registry import MANIFEST
    from tests.conftest import write_manifest

    shipped = yaml.safe_load(MANIFEST.read_text())["checkpoints"]
    checkpoints = {**shipped, "tiny-vlm": {"task": "summarizer", "backend": "transformers-image-text-to-text",
                                          "source": str(tiny_vlm), "version": "tiny-vlm-1"}}
    manifest = write_manifest(tmp_path, checkpoints, {"full": {"text_embedder": "all-minilm-l6-v2",
                                                               "summarizer": "tiny-vlm"}})
    instance, partitions, _ = processed
    before = conn.execute("SELECT summary FROM summaries WHERE partition_key = %s", (partitions["kitchen"],)).fetchone()
    result = materialize([summaries], partition_key=partitions["kitchen"], instance=instance, raise_on_error=False,
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


def test_camera_daily_report_rolls_up_the_days_segments(processed, conn):
    from assets import camera_daily_report

    instance, partitions, _ = processed
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
