"""embeddings: vectors for search: each track's description (text) and, in `full`, its crop (image)."""

from collections.abc import Iterator

from dagster import AssetExecutionContext, MaterializeResult

from assets.attributes import attributes
from assets.video_stage import batch_setup, materialize_videos, model_code_version, video_stage_asset
from resources import ModelRegistryResource, PostgresResource
from video_analysis.stages import embeddings as stage


@video_stage_asset(
    deps=[attributes],
    gpu=True,
    group="understanding",
    kinds={"pytorch", "postgres"},
    code_version=model_code_version("embed-v1", "text_embedder"),
    description="pgvector embeddings (table `embeddings`): each track's description through the text model "
    "and, when an image-text model is available, each track's best crop.",
    checks=("embedding_dimension", "embedding_unit_norm"),
)
def embeddings(context: AssetExecutionContext, database: PostgresResource,
               models: ModelRegistryResource) -> Iterator[MaterializeResult]:
    with batch_setup(context, database, stage.STAGE):
        text_model, text_embedder = models.load("text_embedder")
        image_model, image_embedder, image_absent = models.load_optional("image_embedder")
    db = database.database()
    batch_metadata = {"text_model": text_model.name, "text_model_version": text_model.version,
                      "text_dim": text_embedder.dim, "text_runtime": text_embedder.backend}
    if image_model is not None:
        batch_metadata.update({"image_model": image_model.name, "image_model_version": image_model.version})
    else:
        batch_metadata["image_embeddings"] = f"absent: {image_absent}"
    yield from materialize_videos(
        context, database, stage.STAGE,
        lambda key: stage.run(db, key, text_embedder, text_model.stamp, image_embedder=image_embedder,
                              image_model=image_model.stamp if image_model else None, run_id=context.run.run_id),
        batch_metadata)
