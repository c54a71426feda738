from video_analysis.events.answers import grounded_answer

HITS = [
    {"kind": "incident", "partition_key": "lobby.mp4@1", "object_key": "lobby.mp4", "camera": "lobby",
     "start_s": 94.0, "end_s": 120.5, "text": "loitering: person 5 stayed 26 s within 1.5 body heights"},
    {"kind": "track", "partition_key": "lobby.mp4@1", "object_key": "lobby.mp4", "camera": "lobby",
     "start_s": 94.0, "end_s": 120.5, "text": "person wearing a black top, stationary, on screen for 26 seconds"},
]


def test_the_templated_answer_cites_every_sentence():
    answer = grounded_answer("who hung around in the lobby?", HITS)
    assert answer.generator == "template"
    assert answer.text == ("Loitering: person 5 stayed 26 s within 1.5 body heights, in lobby.mp4 (camera lobby) "
                           "at 1:34-2:00 [1]. A person wearing a black top, stationary, on screen for 26 seconds, in "
                           "lobby.mp4 (camera lobby) at 1:34-2:00 [2].")
    assert [(c.ref, c.partition_key, c.start_s) for c in answer.citations] == [(1, "lobby.mp4@1", 94.0),
                                                                             (2, "lobby.mp4@1", 94.0)]


def test_no_rows_no_answer_only_the_statement_that_nothing_matches():
    answer = grounded_answer("where is the red car?", [])
    assert answer.text == "Nothing in the footage matches that question." and answer.citations == []


def test_a_written_answer_stands_only_when_every_sentence_cites_a_given_row():
    good = grounded_answer("who?", HITS, writer=lambda q, facts: "One person loitered by the lobby [1][2].",
                           writer_name="tiny-llm")
    assert (good.text, good.generator) == ("One person loitered by the lobby [1][2].", "tiny-llm")
    for written in ("One person loitered. It was at 1:34 [1].",  # a sentence without a citation
                    "A person loitered [3].",  # a row that was never given
                    ""):
        answer = grounded_answer("who?", HITS, writer=lambda q, facts, text=written: text)
        assert answer.generator == "template" and answer.text.endswith("[2].")

    def failing(question, facts):
        raise RuntimeError("model crashed")

    crashed = grounded_answer("who?", HITS, writer=failing, writer_name="tiny-llm")
    assert crashed.generator == "template"
    assert crashed.note == "tiny-llm failed (RuntimeError); the templated answer stands"


def test_a_vision_language_checkpoint_writes_answers_through_its_real_loader_and_is_held_to_citations(tiny_vlm):
    """The full profile's writer: the summarizer checkpoint, text only. A random tiny model writes no
    citations, so its answer is refused and the note says why."""
    from video_analysis.vision.loaders import load_model

    writer = load_model("transformers-image-text-to-text", tiny_vlm)
    written = []

    def spy(question, facts):
        written.append(writer.write_answer(question, facts))
        return written[-1]

    answer = grounded_answer("who hung around in the lobby?", HITS, writer=spy, writer_name="tiny-vlm")
    assert written and isinstance(written[0], str)  # the model ran and produced text
    assert answer.generator == "template" and answer.text.endswith("[2].")
    assert answer.note == ("tiny-vlm's answer was empty or did not cite a given fact in every sentence; "
                           "the templated answer stands")


def test_a_summary_is_cited_by_its_first_sentence_and_the_template_passes_its_own_rule():
    from video_analysis.events.answers import _valid

    summary = "40 seconds of the footage: 5 bottles tracked. No incidents. Safety score 100/100."
    hits = [{"kind": "summary", "partition_key": "k.mp4@1", "object_key": "k.mp4", "camera": None, "start_s": 0.0,
             "end_s": 40.0, "text": summary},
            {"kind": "track", "partition_key": "k.mp4@1", "object_key": "k.mp4", "camera": None, "start_s": 3.0,
             "end_s": 9.0, "text": "orange car, stationary, on screen for 6 seconds"}]
    answer = grounded_answer("what was there?", hits)
    assert answer.text == ("In k.mp4: 40 seconds of the footage: 5 bottles tracked [1]. An orange car, stationary, "
                           "on screen for 6 seconds, in k.mp4 at 0:03-0:09 [2].")
    assert _valid(answer.text, len(hits))
