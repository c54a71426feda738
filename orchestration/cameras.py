"""Camera health in Dagster: one alert when a live camera goes silent, through the failure-alert webhook."""

from datetime import datetime, timezone

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from configuration.settings import Settings, sensor_interval_seconds
from resources import PostgresResource
from video_analysis.runtime.alerts import CameraAlert, send
from video_analysis.store import cameras


@sensor(
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Alerts once ($REELGRAPH_ALERT_WEBHOOK and the log) when a live camera goes silent: its stream "
    "lost for $REELGRAPH_CAMERA_LOST_SECONDS, or nothing published for two segment lengths; again only after "
    "it recovered.",
)
def camera_silence_sensor(context: SensorEvaluationContext, database: PostgresResource):
    lost_after = Settings.from_env().camera_lost_seconds
    now = datetime.now(timezone.utc)
    silent, recovered = [], []
    with database.session() as conn:
        for camera in cameras.camera_health(conn, now=now, lost_after_s=lost_after):
            if camera.silent_since and camera.alerted_at is None:
                alert = CameraAlert(camera.name, camera.silent_since.isoformat(timespec="seconds"),
                                    camera.silence or "silent", camera.last_segment_key)
                webhook = Settings.from_env().alert_webhook
                if send(alert, webhook) or not webhook:  # an unreachable webhook is tried again next tick
                    cameras.mark_alerted(conn, camera.name, now)
                silent.append(camera.name)
            elif not camera.silent_since and camera.alerted_at is not None:
                cameras.mark_alerted(conn, camera.name, None)
                context.log.info("camera %s recovered (alerted at %s)", camera.name, camera.alerted_at)
                recovered.append(camera.name)
    if silent:
        context.log.warning("silent cameras alerted: %s", ", ".join(silent))
    return SkipReason(f"alerted: {', '.join(silent) or 'none'}; recovered: {', '.join(recovered) or 'none'}")
