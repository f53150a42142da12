"""`--web.config.file` (exporter-toolkit's format) on the agent, the demo target and the proxy's control
port: TLS with certificates made at test time, basic auth with bcrypt hashes; real clients that present
no credentials, wrong ones and the right ones."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.support.processes import cli, run_cli, started
from tests.support.tls import ServerCert, issue

USER, PASSWORD = "prometheus", "scrape-pass-81"
TOKEN = "fault-token-23"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return issue(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def web_config(tmp_path_factory: pytest.TempPathFactory, cert: ServerCert) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path_factory.mktemp("web") / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {cert.cert_file}\n  key_file: {cert.key_file}\n"
                    f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    return path


def _call(url: str, cert: ServerCert, *, method: str = "GET", auth: tuple[str, str] | None = None,
          bearer: str | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    context = ssl.create_default_context(cafile=cert.ca_file)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory: pytest.TempPathFactory, web_config: Path) -> Iterator[str]:
    path = tmp_path_factory.mktemp("agent") / "agent.yaml"
    path.write_text("probes: []\n")
    cmd = cli("run", "--config", str(path), "--listen", "127.0.0.1:0", "--web.config.file", str(web_config))
    with started(cmd, expect=["agent"]) as agent:
        yield agent.urls["agent"]


ENDPOINTS = [("GET", "/"), ("GET", "/metrics"), ("GET", "/api/results"), ("GET", "/-/healthy"),
             ("POST", "/-/reload")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_the_agent_refuses_calls_without_the_right_password(agent_url: str, cert: ServerCert, method: str,
                                                            path: str) -> None:
    assert agent_url.startswith("https://127.0.0.1:")
    status, headers = _call(agent_url + path, cert, method=method)
    assert status == 401
    assert headers["www-authenticate"].startswith('Basic realm="probe-agent"')
    assert _call(agent_url + path, cert, method=method, auth=(USER, "wrong"))[0] == 401
    assert _call(agent_url + path, cert, method=method, auth=("nobody", PASSWORD))[0] == 401
    assert _call(agent_url + path, cert, method=method, auth=(USER, PASSWORD))[0] == 200


def test_the_agent_speaks_only_tls_with_its_certificate(agent_url: str, cert: ServerCert) -> None:
    plain = agent_url.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain + "/-/healthy", timeout=5)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(agent_url + "/-/healthy", timeout=5, context=ssl.create_default_context())


def test_the_target_and_its_fault_api_need_credentials(web_config: Path, cert: ServerCert) -> None:
    cmd = cli("target", "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--web.config.file", str(web_config))
    with started(cmd, expect=["target"]) as target:
        url = target.urls["target"]
        assert _call(url + "/api/search?q=laptop", cert)[0] == 401
        assert _call(url + "/api/search?q=laptop", cert, auth=(USER, PASSWORD))[0] == 200
        assert _call(url + "/-/faults", cert)[0] == 401
        # The scrape password is not the fault token: the fault API keeps its own check.
        assert _call(url + "/-/faults", cert, auth=(USER, PASSWORD))[0] == 401
        assert _call(url + "/-/faults", cert, bearer="wrong")[0] == 403
        assert _call(url + "/-/faults", cert, bearer=TOKEN)[0] == 200


def test_the_proxy_control_port_needs_credentials(web_config: Path, cert: ServerCert) -> None:
    cmd = cli("proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--control", "127.0.0.1:0",
              "--token", TOKEN, "--web.config.file", str(web_config))
    with started(cmd, expect=["proxy", "control"]) as proxy:
        control = proxy.urls["control"]
        assert control.startswith("https://")
        assert _call(control + "/metrics", cert)[0] == 401
        assert _call(control + "/metrics", cert, auth=(USER, PASSWORD))[0] == 200
        assert _call(control + "/-/faults", cert)[0] == 401
        assert _call(control + "/-/faults", cert, bearer=TOKEN)[0] == 200


@pytest.mark.parametrize(("text", "expected"), [
    ("basic_auth_users: {prometheus: not-a-hash}\n", "web.yml:1: basic_auth_users: user 'prometheus': not a bcrypt"),
    ("tls_server_config: {cert_file: missing.pem, key_file: missing.key}\n",
     "web.yml:1: tls_server_config.cert_file: cannot load certificate"),
    ("tls_server_config: {cert_file: a.pem}\n", "web.yml:1: tls_server_config.key_file: Field required"),
    ("basic_auth: {}\n", "web.yml:1: basic_auth: unknown field"),
])
def test_a_bad_web_config_is_a_config_error(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "agent.yaml").write_text("probes: []\n")
    (tmp_path / "web.yml").write_text(text)
    proc = run_cli("run", "--config", str(tmp_path / "agent.yaml"), "--listen", "127.0.0.1:0",
                   "--web.config.file", str(tmp_path / "web.yml"), timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
