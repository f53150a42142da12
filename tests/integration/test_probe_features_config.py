"""Mistakes in scripted, TLS and search probe configs are found at load: `probe-agent check-config` exits 2
with one `FILE:LINE: field.path: message` line per error, and no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import run_cli

GOOD = """\
probes:
  - name: login-then-search
    type: scripted
    tls: {insecure_skip_verify: true}
    steps:
      - name: login
        request: {method: POST, url: "https://127.0.0.1:8443/auth/token", json: {user: probe}}
        extract: {token: "$.access_token", request_id: {header: X-Request-Id}, n: {regex: 'n=(\\d+)'}}
      - name: search
        request: {url: "https://127.0.0.1:8443/api/search?q=phone", headers: {Authorization: "Bearer ${token}"}}
        expect: {json: [{path: "$.total", gt: 0}], schema: {type: object}}
      - name: logout
        always_run: true
        optional: true
        request: {method: POST, url: "https://127.0.0.1:8443/auth/logout", body: "${token}"}
"""

BAD = """\
probes:
  - name: scripted
    type: scripted
    steps:
      - name: no-request
        extract: {token: "$.access_token"}
      - name: search
        request: {url: "http://127.0.0.1:8000/api/search?t=${token}"}
        extract:
          bad-regex: {regex: "(unclosed"}
          bad-path: "$.[[["
          two-sources: {json: "$.x", header: X-Y}
        expect:
          schema: {type: 12}
          body_matches: "*x"
      - name: both-bodies
        request: {url: "http://127.0.0.1:8000/", json: {a: 1}, body: "b"}
  - name: search
    type: search
    url: http://127.0.0.1:8000/api/search
    queries: [laptop]
    queries_file: queries.txt
    tls: {verify: false}
    expect: {max_took_ms: -1, took_path: "$..[", json: [{path: "$.total"}]}
"""

EXPECTED = [
    (5, "probes[0].steps[0].request", "Field required"),
    (10, "probes[0].steps[1].extract.bad-regex", "invalid regular expression '(unclosed'"),
    (11, "probes[0].steps[1].extract.bad-path", "invalid JSONPath '$.[[['"),
    (12, "probes[0].steps[1].extract.two-sources", "give exactly one of json, regex, header"),
    (14, "probes[0].steps[1].expect.schema", "invalid JSON Schema"),
    (15, "probes[0].steps[1].expect.body_matches", "invalid regular expression '*x'"),
    (17, "probes[0].steps[2].request", "give only one of json, body, form"),
    (23, "probes[1].tls.verify", "unknown field"),
    (24, "probes[1].expect.max_took_ms", "greater than or equal to 0"),
    (24, "probes[1].expect.took_path", "invalid JSONPath"),
    (24, "probes[1].expect.json[0]", "give exactly one of equals"),
]


def check(tmp_path: Path, text: str, name: str = "agent.yaml") -> tuple[int, list[str]]:
    path = tmp_path / name
    path.write_text(text)
    proc = run_cli("check-config", str(path))
    assert "Traceback" not in proc.stderr
    lines = [line.removeprefix("error: ") for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines


def test_a_good_scripted_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(GOOD)
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "OK (1 probe)" in proc.stdout


def test_every_mistake_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    code, lines = check(tmp_path, BAD)
    assert code == 2
    path = str(tmp_path / "agent.yaml")
    for line, field, message in EXPECTED:
        prefix = f"{path}:{line}: {field}: "
        assert any(out.startswith(prefix) and message in out for out in lines), \
            f"no {prefix}...{message}... in:\n" + "\n".join(lines)


def test_a_variable_no_earlier_step_extracts_is_a_load_error(tmp_path: Path) -> None:
    text = GOOD.replace("Bearer ${token}", "Bearer ${tokn}")
    code, lines = check(tmp_path, text)
    assert code == 2
    assert lines == [f"{tmp_path / 'agent.yaml'}:10: probes[0].steps[1].request.headers.Authorization: "
                     "environment variable tokn is not set"]


def test_an_unreadable_queries_file_is_a_load_error(tmp_path: Path) -> None:
    text = """\
probes:
  - name: search
    type: search
    url: http://127.0.0.1:8000/api/search
    queries_file: missing-queries.txt
"""
    code, lines = check(tmp_path, text)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'agent.yaml'}:5: probes[0].queries_file: cannot read ")


def test_whole_probe_checks_name_the_probe(tmp_path: Path) -> None:
    text = """\
probes:
  - name: twice
    type: scripted
    steps:
      - {name: same, request: {url: "http://127.0.0.1:8000/a"}}
      - {name: same, request: {url: "http://127.0.0.1:8000/b"}}
  - name: both-queries
    type: search
    url: http://127.0.0.1:8000/api/search
    queries: [laptop]
    queries_file: queries.txt
"""
    code, lines = check(tmp_path, text)
    assert code == 2
    path = tmp_path / "agent.yaml"
    assert lines == [f"{path}:2: probes[0]: step names must be unique: same",
                     f"{path}:7: probes[1]: give either queries or queries_file, not both"]
