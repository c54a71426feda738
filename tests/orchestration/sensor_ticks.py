"""Evaluate the upload sensor the way the daemon does, and keep score of what it requested."""

from dataclasses import dataclass, field

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from orchestration.definitions import build_resources
from orchestration.partitions import VIDEOS_PARTITIONS_NAME
from orchestration.sensors import video_upload_sensor


@dataclass
class SensorHarness:
    instance: DagsterInstance
    cursor: str | None = None
    run_keys: list[str] = field(default_factory=list)

    def tick(self) -> list[str]:
        """One evaluation; applies partition requests and the cursor; returns the run keys requested."""
        context = build_sensor_context(instance=self.instance, cursor=self.cursor, resources=build_resources())
        result = video_upload_sensor(context)
        if isinstance(result, SkipReason):
            self.cursor = context.cursor
            return []
        assert isinstance(result, SensorResult)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        keys = [request.run_key for request in result.run_requests]
        assert all(r.partition_key == r.run_key for r in result.run_requests)
        self.run_keys += keys
        return keys

    def tick_until_quiet(self, max_ticks: int = 50) -> int:
        for count in range(1, max_ticks + 1):
            before = len(self.run_keys)
            self.tick()
            if len(self.run_keys) == before and self.cursor_position() is None:
                return count
        raise AssertionError("sensor never settled")

    def cursor_position(self):
        import json

        return json.loads(self.cursor or "{}").get("start_after")

    def restart(self):
        """A restarted daemon: a new instance object over the same storage, same cursor."""
        self.instance = DagsterInstance.from_ref(self.instance.get_ref())

    def reset_cursor(self):
        self.cursor = None

    @property
    def partitions(self) -> list[str]:
        return self.instance.get_dynamic_partitions(VIDEOS_PARTITIONS_NAME)
