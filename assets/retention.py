"""retention: footage past its policy moved cold or removed, facts past theirs erased (daily)."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.partitions import forget_partitions
from configuration.settings import Settings
from resources import ObjectStoreResource, PostgresResource
from video_analysis.store import db
from video_analysis.store.retention import sweep
from video_analysis.store.retention_policy import load_retention


@asset(
    group_name="housekeeping",
    kinds={"postgres"},
    owners=["team:video-platform"],
    description="The retention policy of the zones file applied (`retention:`): footage moved to the cold tier "
    "after cold_after_days, removed after retain_days (retain_incident_days where something happened; the row "
    "stays, marked expired), videos and their facts erased after retain_facts_days. Idempotent: a sweep killed "
    "mid-way is finished by the next.",
)
def retention(context: AssetExecutionContext, database: PostgresResource,
              object_store: ObjectStoreResource) -> MaterializeResult:
    config = load_retention(Settings.from_env().zones_path)
    with db.connect(database.dsn(), autocommit=True) as conn:
        plan, result = sweep(conn, object_store.store(), config)
    erased = result.erased_keys
    if erased:
        forget_partitions(context.instance, erased)
    context.log.info("retention: %s", result.describe())
    return MaterializeResult(metadata={
        "policy configured": config.configured,
        "moved to cold tier": result.moved_cold,
        "footage expired": result.expired,
        "videos erased": result.erased,
        "bytes freed": MetadataValue.int(result.freed_bytes),
        "bytes moved cold": MetadataValue.int(result.moved_cold_bytes),
        "rows removed": MetadataValue.json(dict(result.rows_removed)),
        "failures": MetadataValue.json(result.failures[:50]),
        "seconds": round(result.seconds, 2),
    })
