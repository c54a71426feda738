"""Backfills over catalogued footage, launched the way the UI launches them.

`reelgraph backfill` picks videos from the catalogue (camera, recording time, key prefix), optionally
keeps only those whose stages are stale or missing (a new model version changes a stage's code version),
and asks the webserver for one asset backfill through its GraphQL API: the same request as the UI's
"Materialize" dialog, so the backfill shows up, is batched by each stage's backfill policy
(``REELGRAPH_VIDEOS_PER_RUN`` videos per run) and can be cancelled or retried there.

`reelgraph register` records object versions as partitions without launching runs, for bulk imports of
historical footage that a backfill then processes in batches.
"""

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dagster import DagsterInstance

from assets.partitions import VIDEOS_PARTITIONS_NAME
from video_analysis.runtime.discovery import readable_name
from video_analysis.runtime.keys import looks_like_video
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.store import catalog

log = logging.getLogger(__name__)

# How many partitions one GraphQL request asks the stale status of.
STATUS_CHUNK = 1000


class WebserverError(RuntimeError):
    """The Dagster webserver could not be reached or refused the request."""


@dataclass(frozen=True)
class DagsterWebserver:
    url: str  # e.g. http://127.0.0.1:3000
    timeout_s: float = 120.0

    def query(self, text: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url.rstrip('/')}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.load(response)
        # OSError: refused, reset (RemoteDisconnected), timed out; HTTPException: a truncated answer (IncompleteRead)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise WebserverError(f"Dagster webserver at {self.url}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("data") or payload.get("errors"), (dict, list)):
            raise WebserverError(f"Dagster webserver at {self.url}: not a GraphQL answer")
        if payload.get("errors"):
            raise WebserverError("; ".join(str(error.get("message", error)) if isinstance(error, dict) else str(error)
                                           for error in payload["errors"]))
        return payload["data"]


_ASSET_PARTITIONS = """
query ($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { assetKey { path } partitionKeys } }"""

_STALE_STATUS = """
query ($keys: [AssetKeyInput!], $partitions: [String!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } staleStatusByPartition(partitions: $partitions) }
}"""

_LAUNCH = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""


def _keys(stages: Sequence[str]) -> list[dict]:
    return [{"path": [stage]} for stage in stages]


def known_partitions(webserver: DagsterWebserver, stage: str) -> set[str]:
    nodes = webserver.query(_ASSET_PARTITIONS, {"keys": _keys([stage])})["assetNodes"]
    if not nodes:
        raise WebserverError(f"the webserver's workspace has no asset {stage!r}")
    return set(nodes[0]["partitionKeys"])


def not_fresh(webserver: DagsterWebserver, stages: Sequence[str], partitions: Sequence[str]) -> dict[str, set[str]]:
    """Per stage, the partitions whose materialization is stale or missing."""
    found: dict[str, set[str]] = {stage: set() for stage in stages}
    for start in range(0, len(partitions), STATUS_CHUNK):
        chunk = list(partitions[start:start + STATUS_CHUNK])
        nodes = webserver.query(_STALE_STATUS, {"keys": _keys(stages), "partitions": chunk})["assetNodes"]
        for node in nodes:
            stage = node["assetKey"]["path"][-1]
            found[stage].update(p for p, status in zip(chunk, node["staleStatusByPartition"], strict=True)
                                if status != "FRESH")
    return found


@dataclass(frozen=True)
class BackfillPlan:
    stages: list[str]
    partitions: list[str]
    skipped_fresh: int = 0

    def describe(self) -> str:
        if not self.partitions:
            return "nothing to backfill"
        return f"{len(self.partitions)} videos through {' -> '.join(self.stages)}"


def plan_backfill(webserver: DagsterWebserver, candidates: Sequence[str], stages: Sequence[str],
                  stale_only: bool) -> BackfillPlan:
    """Which partitions and stages to backfill. Stale-only starts at the first stage that needs work, so
    an upgraded detector re-runs detections and everything after it, never raw_video."""
    known = known_partitions(webserver, stages[0])
    partitions = [p for p in candidates if p in known]
    if len(partitions) < len(candidates):
        log.warning("%d catalogued videos are not partitions of this Dagster instance; left out",
                    len(candidates) - len(partitions))
    if not stale_only or not partitions:
        return BackfillPlan(list(stages), partitions)
    pending = not_fresh(webserver, stages, partitions)
    first = next((i for i, stage in enumerate(stages) if pending[stage]), None)
    if first is None:
        return BackfillPlan([], [], skipped_fresh=len(partitions))
    wanted = set().union(*pending.values())
    chosen = [p for p in partitions if p in wanted]
    return BackfillPlan(list(stages[first:]), chosen, skipped_fresh=len(partitions) - len(chosen))


def launch_backfill(webserver: DagsterWebserver, plan: BackfillPlan, title: str) -> str:
    params = {"assetSelection": _keys(plan.stages), "partitionNames": plan.partitions, "title": title,
              "tags": [{"key": "reelgraph/launched_by", "value": "cli"}]}
    result = webserver.query(_LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise WebserverError(f"backfill refused ({result['__typename']}): {result.get('message', '')}")
    return result["backfillId"]


def register_objects(store: ObjectStore, database, instance: DagsterInstance, prefix: str = "",
                     page_size: int = 1000, settle_seconds: float = 0.0) -> list[str]:
    """Catalogue every video object version under `prefix` and add it as a partition; launch nothing.

    The upload sensor skips partitions that exist, so registered videos wait for a backfill. As in the
    sensor, objects modified within `settle_seconds` may still be being written and are left for later.
    """
    known = set(instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME))
    settled_before = datetime.now(timezone.utc) - timedelta(seconds=settle_seconds)
    added: list[str] = []
    settling = 0
    start_after = prefix[:-1] if prefix else None  # every key with the prefix sorts after this
    while True:
        page = store.list_page(start_after, page_size)
        in_prefix = [obj for obj in page.objects if obj.key.startswith(prefix)]
        unreadable = [obj.key for obj in in_prefix if not readable_name(obj.key)]
        for key in unreadable:
            log.warning("skipped %s: its name is not valid UTF-8; rename it to have it processed", ascii(key))
        new = [obj for obj in in_prefix if readable_name(obj.key) and looks_like_video(obj.key)
               and obj.partition_key not in known]
        batch = [obj for obj in new if obj.last_modified <= settled_before]
        settling += len(new) - len(batch)
        if batch:
            with database.session() as conn:  # catalogue first: raw_video maps partition keys to objects
                for obj in batch:
                    catalog.register(conn, obj)
            keys = [obj.partition_key for obj in batch]
            instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, keys)
            known.update(keys)
            added += keys
        past_prefix = bool(page.objects) and page.objects[-1].key > prefix and not page.objects[-1].key.startswith(
            prefix)
        if not page.next_start_after or past_prefix:
            if settling:
                log.warning("%d objects were modified in the last %g s and may still be being written; "
                            "left for a later registration", settling, settle_seconds)
            return added
        start_after = page.next_start_after
