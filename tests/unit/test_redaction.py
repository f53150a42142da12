from __future__ import annotations

from probes.redaction import REDACTED, redact_headers, redact_text, redact_url, register_secret


def test_userinfo_and_secret_query_values_are_hidden_but_the_rest_of_the_url_stays() -> None:
    url = redact_url("https://user:pw@api.example:8443/search?q=laptop&api_key=abc123&limit=10")
    assert "pw" not in url and "abc123" not in url
    assert url.startswith(f"https://{REDACTED}@api.example:8443/search?")
    assert "q=laptop" in url and "limit=10" in url


def test_secret_headers_are_hidden_case_insensitively_plus_the_probe_s_own_list() -> None:
    out = dict(redact_headers({"Authorization": "Bearer x", "X-Tenant": "t1", "X-Custom-Secret": "s"},
                              extra=["x-custom-secret"]))
    assert out == {"Authorization": REDACTED, "X-Tenant": "t1", "X-Custom-Secret": REDACTED}


def test_registered_values_vanish_from_free_text_and_urls_in_error_messages_are_cleaned() -> None:
    register_secret("s3cr3t-token-value")
    message = "Cannot connect to http://bob:hunter2@db:9200/x?token=s3cr3t-token-value (refused) s3cr3t-token-value"
    cleaned = redact_text(message)
    assert "hunter2" not in cleaned and "s3cr3t-token-value" not in cleaned
    assert "(refused)" in cleaned and "db:9200" in cleaned


def test_values_extracted_at_run_time_are_redacted_but_only_the_most_recent_are_kept() -> None:
    from probes import redaction

    register_secret("run-token-first", transient=True)
    assert redact_text("token run-token-first") == f"token {REDACTED}"
    for n in range(redaction.MAX_TRANSIENT):
        register_secret(f"later-token-{n:04d}", transient=True)
    # An agent runs for months with a new token every run: memory stays bounded, the newest stay hidden.
    assert redact_text("run-token-first") == "run-token-first"
    assert redact_text(f"later-token-{redaction.MAX_TRANSIENT - 1:04d}") == REDACTED


def test_short_values_are_not_secrets_in_free_text() -> None:
    register_secret("ab1")
    assert redact_text("status ab1 code 200") == "status ab1 code 200"


def test_a_base_url_from_the_environment_stays_readable_but_a_token_from_it_does_not() -> None:
    from probes.agent.config_file import parse_config
    from probes.redaction import redact_values

    text = ("probes:\n  - name: s\n    type: http\n    url: ${API_BASE}/health\n"
            "    headers: {X-Tenant: \"${TENANT_TOKEN}\"}\n")
    probe = parse_config(text, "agent.yaml", env={"API_BASE": "http://api.internal:8080",
                                                  "TENANT_TOKEN": "tenant-token-42"}).probes[0]
    assert probe.target() == "http://api.internal:8080/health"
    assert redact_values(probe.target()) == "http://api.internal:8080/health"
    assert redact_values("sent tenant-token-42") == f"sent {REDACTED}"
