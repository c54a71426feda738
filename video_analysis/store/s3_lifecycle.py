"""The S3 lifecycle rules that move footage to a cold storage class when the retention policy says it goes cold."""

from __future__ import annotations

from video_analysis.store.retention_policy import RetentionConfig


def lifecycle_rules(config: RetentionConfig, storage_class: str = "STANDARD_IA", prefix: str = "") -> dict:
    """An S3 lifecycle configuration that moves footage to ``storage_class`` after ``cold_after_days`` (recorded
    cameras under ``cameras/<name>/``, the default for every other key). Removal is left to the sweep, which
    keeps the catalogue true: no Expiration rule."""
    rules = []
    least = 30 if storage_class in ("STANDARD_IA", "ONEZONE_IA") else 0  # S3 refuses IA transitions before 30 days

    def days(value: float) -> int:
        return max(least, 1, round(value))

    for camera, policy in sorted(config.cameras.items()):
        if policy.cold_after_days:
            rules.append({"ID": f"reelgraph-cold-{camera}", "Status": "Enabled",
                          "Filter": {"Prefix": f"{prefix}cameras/{camera}/"},
                          "Transitions": [{"Days": days(policy.cold_after_days),
                                           "StorageClass": storage_class}]})
    if config.default.cold_after_days:
        rules.append({"ID": "reelgraph-cold-default", "Status": "Enabled", "Filter": {"Prefix": prefix},
                      "Transitions": [{"Days": days(config.default.cold_after_days),
                                       "StorageClass": storage_class}]})
    return {"Rules": rules}
