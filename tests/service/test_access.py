"""Who may use the review service: tokens, host names and the sign-in cookie, decided before any request."""

import pytest

from service.access import AccessError, AccessPolicy, host_names, read_tokens, session_value


def test_tokens_come_from_the_setting_and_a_file_with_comments(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# the reviewers\nfile-token-0123456789\n\n  second-file-token-0123  \n")
    assert read_tokens("one-token-0123456789, two-token-0123456789", str(tokens)) == {
        "one-token-0123456789", "two-token-0123456789", "file-token-0123456789", "second-file-token-0123"}
    with pytest.raises(AccessError, match="16 characters"):
        read_tokens("guessable", None)
    with pytest.raises(AccessError, match="placeholder"):  # as an example file ships it
        read_tokens("change-me-to-a-long-random-token", None)
    with pytest.raises(AccessError, match="REELGRAPH_SERVICE_TOKENS_FILE"):
        read_tokens(None, str(tmp_path / "absent"))


def test_only_a_loopback_bind_may_run_without_a_token():
    for loopback in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert AccessPolicy.for_bind(loopback, frozenset()).open
    for wider in ("0.0.0.0", "::", "192.168.1.20", "cameras.example.org"):
        with pytest.raises(AccessError, match="REELGRAPH_SERVICE_TOKENS"):
            AccessPolicy.for_bind(wider, frozenset())
        assert not AccessPolicy.for_bind(wider, frozenset({"x" * 20})).open


def test_a_loopback_bind_behind_a_proxy_for_a_public_name_needs_a_token_too():
    with pytest.raises(AccessError, match="review.example.org"):
        AccessPolicy.for_bind("127.0.0.1", frozenset(), "review.example.org")
    assert AccessPolicy.for_bind("127.0.0.1", frozenset(), "localhost").open


def test_host_names_are_loopback_names_plus_the_bound_and_configured_ones():
    assert host_names("127.0.0.1", None) == ["localhost", "127.0.0.1", "[::1]"]
    assert "127.0.0.2" in host_names("127.0.0.2", None)
    assert "192.168.1.20" in host_names("192.168.1.20", None)
    assert "[fd00::5]" in host_names("fd00::5", None)
    configured = host_names("0.0.0.0", "reelgraph.example.org, *.example.net")
    assert {"reelgraph.example.org", "*.example.net"} <= set(configured)


def test_the_cookie_holds_a_digest_of_the_token_that_only_that_token_matches_until_it_expires():
    import time

    from service.access import SESSION_SECONDS

    token, other = "reviewer-token-0123456789", "another-token-0123456789"
    policy = AccessPolicy.for_bind("0.0.0.0", frozenset({token}))
    assert token not in session_value(token)
    assert policy.session_matches(session_value(token)) and not policy.session_matches(session_value(other))
    assert policy.token_matches(token) and not policy.token_matches(token[:-1])
    issued = int(time.time()) - SESSION_SECONDS - 1
    assert not policy.session_matches(session_value(token, issued))  # expired on the server, not by the browser
    forged = session_value(token).split(".")[1]
    assert not policy.session_matches(f"{int(time.time()) + 3600}.{forged}")  # a later time, the old digest
    # odd cookies are refused, not a 500: a time of 5000 digits, a digit that is not ASCII
    assert not policy.session_matches("9" * 5000 + "." + forged) and not policy.session_matches("²." + forged)
