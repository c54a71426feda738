"""summaries: incidents, a 0-100 safety score and a readable summary per video, from tracks and attributes."""

from collections import Counter
from collections.abc import Iterator

from dagster import AssetCheckSpec, AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.attributes import zones_file
from assets.embeddings import embeddings
from assets.stage import VideoOutcome, batch_setup, materialize_videos, video_backfill_policy
from orchestration.partitions import videos_partitions
from resources import ModelRegistryResource, ObjectStoreResource, PostgresResource
from video_analysis import catalog, quality
from video_analysis.attributes import load_zones
from video_analysis.incidents import IncidentRules, detect_incidents, incidents_json, safety_score, summary_text
from video_analysis.narration import narrate
from video_analysis.results import ModelStamp, load_tracks, replace_embeddings, replace_summary
from video_analysis.settings import Settings
from video_analysis.understanding import clothing_colours, keyframes, track_facts

STAGE = "summaries"


class SummaryConfig(Config):
    loiter_seconds: float = Field(default=30.0, description="A person staying in one spot this long is loitering.")
    crowd_size: int = Field(default=5, description="This many people on screen at once is crowding.")
    unattended_seconds: float = Field(default=30.0, description="A bag alone this long is left unattended.")


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    deps=[embeddings],
    group_name="understanding",
    kinds={"python", "postgres"},
    owners=["team:video-platform"],
    code_version="summary-v1",
    description="Per video (table `summaries`): rule-based incidents (loitering, crowding, running, zone "
    "intrusion, unattended object) with times and track ids, a 0-100 safety score, and a summary text "
    "(templated, or written by a vision-language model in `full` when its JSON output validates).",
    check_specs=[AssetCheckSpec(name, asset="summaries")
                 for name in ("one_summary_per_video", "safety_score_in_range")],
)
def summaries(context: AssetExecutionContext, config: SummaryConfig, database: PostgresResource,
              object_store: ObjectStoreResource, models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    rules = IncidentRules(loiter_seconds=config.loiter_seconds, crowd_size=config.crowd_size,
                          unattended_seconds=config.unattended_seconds)
    with batch_setup(context, database, STAGE):
        store = object_store.store()
        vlm_model, vlm, vlm_absent = models.load_optional("summarizer")
        text_model, text_embedder = models.load("text_embedder")
    zones = zones_file(Settings.from_env())

    def summarize_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            video = catalog.ready_video(conn, partition_key)
            facts = track_facts(conn, partition_key)
            colours = clothing_colours(conn, partition_key)
        restricted = {z.name for z in load_zones(zones, video.camera) if z.restricted}
        incidents = detect_incidents(facts, restricted, rules)
        score = safety_score(incidents, rules)
        text = summary_text(video.duration_s, video.camera, facts, incidents, score, colours)
        generator, vlm_note = "template", f"absent ({vlm_absent}); the templated summary stands"
        if vlm is not None:
            with database.session() as conn:
                stored = load_tracks(conn, partition_key)
            frames = keyframes(store.fetch(video.obj), stored)
            narrated, vlm_note = narrate(vlm, frames, {"incidents": incidents_json(incidents), "safety_score": score},
                                         text)
            if narrated:
                text, generator = narrated, vlm_model.name
        with database.session() as conn:
            replace_summary(conn, partition_key, safety_score=score, incidents=incidents_json(incidents), summary=text,
                            facts={"tracks": Counter(f.class_name for f in facts), "rules": rules.__dict__},
                            generator=generator)
            replace_embeddings(conn, partition_key, "summary_text", ModelStamp(text_model.name, text_model.version),
                               [(None, text)], text_embedder.embed([text]))
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=1, run_id=context.run.run_id,
                                 details={"safety_score": score, "incident_count": len(incidents)})
            findings = quality.summary_findings(conn, partition_key)
        return VideoOutcome({
            "dagster/row_count": 1,
            "safety_score": score,
            "incident_count": len(incidents),
            "incidents": MetadataValue.json(incidents_json(incidents)),
            "summary": MetadataValue.md(text),
            "generator": generator,
            "vlm": vlm_note,
        }, findings)

    yield from materialize_videos(context, database, STAGE, summarize_one)
