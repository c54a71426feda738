"""camera_daily_report: each camera's day in numbers, rolled up from its segments' summaries."""

from datetime import date

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.summaries import summaries
from resources import PostgresResource
from video_analysis.store.reports import replace_daily_report

daily_partitions = DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")


@asset(
    partitions_def=daily_partitions,
    deps=[AssetDep(summaries, partition_mapping=AllPartitionMapping())],
    group_name="reports",
    kinds={"postgres"},
    owners=["team:video-platform"],
    code_version="daily-report-v2",
    description="Per camera and UTC day (table `camera_daily_reports`): videos, footage minutes, mean and "
    "lowest safety score, incident counts by type, from the summaries of that day's camera segments; people, "
    "line crossings, zone entries and stays, busiest hour and peak, from their counting facts.",
)
def camera_daily_report(context: AssetExecutionContext, database: PostgresResource) -> MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    with database.session() as conn:
        rows = replace_daily_report(conn, day)
    return MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "cameras": MetadataValue.json([{**r, "footage_minutes": round(r["footage_minutes"], 1),
                                        "mean_safety_score": round(float(r["mean_safety_score"]), 1)} for r in rows]),
    })
