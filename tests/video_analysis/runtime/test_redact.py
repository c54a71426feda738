import logging

from video_analysis.runtime.alerts import FailureAlert, send
from video_analysis.runtime.redact import redact, redact_url


def test_passwords_in_urls_and_parameters_are_masked():
    assert redact("postgresql://postgres:s3cr3t-Pw@127.0.0.1:5432/reelgraph failed") == \
        "postgresql://postgres:***@127.0.0.1:5432/reelgraph failed"
    assert redact("host=db user=rg password=s3cr3t dbname=x") == "host=db user=rg password=*** dbname=x"
    assert redact("postgresql://postgres@127.0.0.1/reelgraph") == "postgresql://postgres@127.0.0.1/reelgraph"


def test_webhook_tokens_are_not_shown():
    url = "https://hooks.slack.com/services/T0000/B0000/XXXXSECRETXXXX"
    assert redact_url(url) == "https://hooks.slack.com/***"
    assert "SECRET" not in redact_url("http://127.0.0.1:9/hook?token=SECRET")


def test_an_unreachable_webhook_is_logged_without_its_token(caplog):
    alert = FailureAlert(run_id="0123456789", job="process_video", partition="p", video=None, stages=["raw_video"],
                         errors=["boom"])
    with caplog.at_level(logging.WARNING):
        assert send(alert, "http://127.0.0.1:9/services/T0/B0/SECRETTOKEN", timeout_s=2) is False
    assert "unreachable" in caplog.text and "SECRETTOKEN" not in caplog.text
