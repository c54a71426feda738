"""summaries: incidents, a 0-100 safety score and a readable summary per video, from tracks and attributes."""

from collections.abc import Iterator
from dataclasses import replace

from dagster import AssetExecutionContext, Config, MaterializeResult
from pydantic import Field

from assets.attributes import attributes
from assets.detections import detections
from assets.tracks import tracks
from assets.video_stage import batch_setup, materialize_videos, video_stage_asset
from configuration.settings import Settings
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis.events.incident_rules import load_rules, rules_fingerprint
from video_analysis.stages import summaries as stage


class SummaryConfig(Config):
    """One-off overrides for a run; the standing rules live in the zones file's `rules:` section."""

    loiter_seconds: float | None = Field(default=None,
                                         description="A person staying in one area this long is loitering.")
    crowd_size: int | None = Field(default=None,
                                   description="More people than this on screen at once is crowding.")
    unattended_seconds: float | None = Field(default=None,
                                             description="An object alone this long is left unattended.")


@video_stage_asset(
    # what it reads: the tracks with their attributes, and the detections (the scene's evidence: a body on the
    # floor, a bag, static objects); it writes its own summary vector, so it does not wait for `embeddings`
    deps=[detections, tracks, attributes],
    group="understanding",
    kinds={"python", "postgres"},
    # The rules and zones in force are part of the version: editing them marks the summaries stale.
    code_version=f"summary-v4-{rules_fingerprint(Settings.from_env().zones_path)}",
    description="Per video (table `summaries`): rule-based incidents (loitering as dwell in one area over a "
    "person's track fragments, falls, crowding against a capacity or the camera's normal, running, zone "
    "intrusion, unattended objects left by a person) with times, track ids, a confidence and the moments that "
    "show each, a 0-100 safety score weighed by confidence, and a summary text "
    "(templated, or written by a vision-language model in `full` when its JSON output validates).",
    checks=("one_summary_per_video", "safety_score_in_range"),
)
def summaries(context: AssetExecutionContext, config: SummaryConfig, database: PostgresResource,
              object_store: ObjectStoreResource, models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    zones_file = Settings.from_env().zones_path
    overrides = {name: value for name, value in config.model_dump().items() if value is not None}
    rules = replace(load_rules(zones_file), **overrides)
    with batch_setup(context, database, stage.STAGE):
        vlm_model, vlm, vlm_absent = models.load_optional("summarizer")
        text_model, text_embedder = models.load("text_embedder")
    db, store = database.database(), object_store.store()
    yield from materialize_videos(
        context, database, stage.STAGE,
        lambda key: stage.run(db, key, store, text_embedder, text_model.stamp, rules=rules, zones_file=zones_file,
                                  summarizer=vlm, summarizer_name=vlm_model.name if vlm_model else None,
                                  summarizer_absent=vlm_absent, run_id=context.run.run_id))
