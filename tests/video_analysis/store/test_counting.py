"""The counting facts' migration: stores counted before the hourly tallies existed get them, and their rows."""

from tests.video_analysis.search.test_counts import DAY, NOW, add_video
from video_analysis.search.questions import counted


def test_counts_before_the_hourly_tallies_existed_are_filled_in_by_the_migration(scratch_dsn):
    from video_analysis.store import db
    from video_analysis.store.schema import migrate

    with db.connect(scratch_dsn, autocommit=True) as conn:
        migrate(conn, up_to=17)
        add_video(conn, "v", "lobby", DAY.replace(hour=9), [
            (1, 10.0, 30.0, (100.0, 300.0), (400.0, 300.0), "red"),
            (2, 31.0, 50.0, (400.0, 300.0), (700.0, 300.0), "blue"),  # begins where track 1 ended, 1 s later
            (3, 100.0, 120.0, (100.0, 300.0), (400.0, 300.0), "red")])
        conn.execute("INSERT INTO summaries (partition_key, safety_score, incident_count, incidents, summary, facts, "
                     "generator) VALUES ('v', 100, 0, '[]', 's', '{}', 'template')")
        conn.execute("INSERT INTO counting_events (partition_key, kind, name, track_id, class_name, start_t, end_t) "
                     "VALUES ('v', 'visit', 'desk', 1, 'person', 12, 14), ('v', 'visit', 'desk', 1, 'person', 20, 22)")
        migrate(conn)
        assert conn.execute("SELECT track_id, likely_repeat FROM counting_events WHERE kind = 'track' "
                            "ORDER BY track_id").fetchall() == [(1, False), (2, True), (3, False)]
        assert counted(conn, "how many people visited the desk?", now=NOW).text.startswith(
            "2 visits to desk, by 1 person")
        assert conn.execute("SELECT hour, kind, n, repeats FROM counting_hours ORDER BY kind").fetchall() == [
            (DAY.replace(hour=9), "track", 3, 1), (DAY.replace(hour=9), "visit", 2, 1)]
