import pytest

from video_analysis.vision.narration import InvalidSummary, parse_summary


def test_a_json_summary_is_accepted_even_with_chatter_around_it():
    raw = 'Sure! {"summary": "Six people cross the room one at a time; nobody stays long."} Done.'
    assert parse_summary(raw) == "Six people cross the room one at a time; nobody stays long."


@pytest.mark.parametrize("raw, reason", [
    ("Six people crossed.", "no JSON object"),
    ('{"summary": "unterminated}', "not valid JSON"),
    ('{"text": "Six people cross the room one at a time."}', 'no "summary" string'),
    ('{"summary": "ok"}', "summary of 2 characters"),
    ('{"summary": ["a list"]}', 'no "summary" string'),
])
def test_anything_else_is_rejected_with_the_reason(raw, reason):
    with pytest.raises(InvalidSummary, match=reason):
        parse_summary(raw)
