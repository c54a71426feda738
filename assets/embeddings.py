"""embeddings: vectors for search: each track's description (text) and, in `full`, its crop (image)."""

from collections.abc import Iterator

from dagster import AssetCheckSpec, AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.attributes import attributes
from assets.stage import VideoOutcome, batch_setup, materialize_videos, model_code_version, video_backfill_policy
from orchestration.partitions import videos_partitions
from orchestration.placement import GPU_POOL, gpu_op_tags
from resources import ModelRegistryResource, PostgresResource
from video_analysis import catalog, quality, vector_index
from video_analysis.results import ModelStamp, load_tracks, replace_embeddings
from video_analysis.understanding import embed_track_crops, load_descriptions

STAGE = "embeddings"


@asset(
    partitions_def=videos_partitions,
    backfill_policy=video_backfill_policy(),
    deps=[attributes],
    pool=GPU_POOL,
    op_tags=gpu_op_tags(),
    group_name="understanding",
    kinds={"pytorch", "postgres"},
    owners=["team:video-platform"],
    code_version=model_code_version("embed-v1", "text_embedder"),
    description="pgvector embeddings (table `embeddings`): each track's description through the text model "
    "and, when an image-text model is available, each track's best crop.",
    check_specs=[AssetCheckSpec(name, asset="embeddings") for name in ("embedding_dimension", "embedding_unit_norm")],
)
def embeddings(context: AssetExecutionContext, database: PostgresResource,
               models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    with batch_setup(context, database, STAGE):
        text_model, text_embedder = models.load("text_embedder")
        image_model, image_embedder, image_absent = models.load_optional("image_embedder")
    text_stamp = ModelStamp(text_model.name, text_model.version)
    image_stamp = ModelStamp(image_model.name, image_model.version) if image_model else None

    def embed_one(partition_key: str) -> VideoOutcome:
        with database.session() as conn:
            catalog.ready_video(conn, partition_key)
            described = load_descriptions(conn, partition_key)
            stored_tracks = load_tracks(conn, partition_key)
        text_vectors = text_embedder.embed([description for _, description in described])
        image_items, image_vectors = embed_track_crops(stored_tracks, image_embedder) if image_model else ([], None)
        with database.session() as conn:
            rows = replace_embeddings(conn, partition_key, "track_text", text_stamp, list(described), text_vectors)
            rows += replace_embeddings(conn, partition_key, "track_image", image_stamp, image_items, image_vectors)
            catalog.record_stage(conn, partition_key, STAGE, "done", row_count=rows, model_version=text_model.version,
                                 run_id=context.run.run_id)
            findings = quality.embedding_findings(conn, partition_key)
        with database.session() as conn:
            vector_index.ensure_index(conn, text_model.name, text_embedder.dim)
            if image_model is not None:
                vector_index.ensure_index(conn, image_model.name, image_embedder.dim)
        return VideoOutcome({
            "dagster/row_count": rows,
            "examples": MetadataValue.json([{"track": t, "text": d} for t, d in described[:3]]),
        }, findings)

    models_metadata = {"text_model": text_model.name, "text_model_version": text_model.version,
                       "text_dim": text_embedder.dim}
    if image_model is not None:
        models_metadata.update({"image_model": image_model.name, "image_model_version": image_model.version})
    else:
        models_metadata["image_embeddings"] = f"absent: {image_absent}"
    yield from materialize_videos(context, database, STAGE, embed_one, models_metadata)
