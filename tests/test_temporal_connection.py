"""Connecting to any Temporal the standard way: the TEMPORAL_* variables and the profile
file of ``temporalio.envconfig``; TLS with a private CA, mTLS and an API key are tried
against the dev server behind a local TLS-terminating proxy (tests/tls_proxy.py)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment

from tests.tls_proxy import Pem, PrivateCA, TlsProxy
from workers.settings import Settings, SettingsError, load_settings
from workers.temporal import connect_client, connect_config

SERVER_NAME = "temporal.orchestrator.test"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
API_KEY = "tmprl-test-api-key-0123456789"


@pytest.fixture(autouse=True)
def _no_temporal_env(tmp_path: Path) -> Iterator[None]:
    """Only what a test sets: no TEMPORAL_* from the machine, no profile file from $HOME.
    Tests set variables in os.environ directly; the whole environment is restored after."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            del os.environ[name]
    os.environ["HOME"] = str(tmp_path / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class Pki:
    server_ca: PrivateCA
    server: Pem
    client_ca: PrivateCA
    client: Pem  # signed by client_ca
    other_ca: PrivateCA
    stranger: Pem  # a client certificate signed by other_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    server_ca = PrivateCA(directory, "server CA")
    client_ca = PrivateCA(directory, "client CA")
    other_ca = PrivateCA(directory, "unrelated CA")
    return Pki(
        server_ca=server_ca,
        server=server_ca.issue(SERVER_NAME, server=True),
        client_ca=client_ca,
        client=client_ca.issue("orchestrator-worker", server=False),
        other_ca=other_ca,
        stranger=other_ca.issue("someone-else", server=False),
    )


def _dev_server(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


def _settings(**values: object) -> Settings:
    return load_settings(encryption_master_key=MASTER_KEY, secrets_dir=None, **values)


async def _can_connect(settings: Settings) -> bool:
    try:
        client = await connect_client(settings)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except RuntimeError:
        return False
    return True


async def test_tls_with_a_private_ca_and_server_name(
    temporal_env: WorkflowEnvironment, pki: Pki
) -> None:
    server_ca, server = pki.server_ca, pki.server
    async with TlsProxy(_dev_server(temporal_env), server) as proxy:
        settings = _settings(
            temporal_address=proxy.address,
            temporal_tls_server_ca_cert_path=server_ca.pem.cert,
            temporal_tls_server_name=SERVER_NAME,
        )
        assert await _can_connect(settings)
        # It went through the proxy's TLS: the proxy decrypted the client's HTTP/2 requests.
        paths = {h.get(":path") for h in proxy.request_headers()}
        assert "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo" in paths


@pytest.mark.parametrize(
    "case",
    ["no CA: the private CA is not trusted", "wrong server name", "CA of someone else"],
)
async def test_tls_refuses_a_server_it_cannot_verify(
    temporal_env: WorkflowEnvironment, pki: Pki, case: str
) -> None:
    server_ca, other_ca = pki.server_ca, pki.other_ca
    cases: dict[str, dict[str, object]] = {
        "no CA: the private CA is not trusted": {
            "temporal_tls": True,
            "temporal_tls_server_name": SERVER_NAME,
        },
        "wrong server name": {
            "temporal_tls_server_ca_cert_path": server_ca.pem.cert,
            "temporal_tls_server_name": "impostor.orchestrator.test",
        },
        "CA of someone else": {
            "temporal_tls_server_ca_cert_path": other_ca.pem.cert,
            "temporal_tls_server_name": SERVER_NAME,
        },
    }
    values = cases[case]
    async with TlsProxy(_dev_server(temporal_env), pki.server) as proxy:
        settings = _settings(temporal_address=proxy.address, **values)
        assert not await _can_connect(settings)
        assert proxy.request_headers() == []  # nothing got through


async def test_mtls_client_certificate_is_required_and_accepted(
    temporal_env: WorkflowEnvironment, pki: Pki
) -> None:
    server_ca, client_ca = pki.server_ca, pki.client_ca
    client, stranger = pki.client, pki.stranger
    server_tls = {
        "temporal_tls_server_ca_cert_path": server_ca.pem.cert,
        "temporal_tls_server_name": SERVER_NAME,
    }
    async with TlsProxy(
        _dev_server(temporal_env),
        pki.server,
        client_ca=client_ca.pem.cert,
    ) as proxy:
        with_cert = _settings(
            temporal_address=proxy.address,
            temporal_tls_client_cert_path=client.cert,
            temporal_tls_client_key_path=client.key,
            **server_tls,
        )
        assert await _can_connect(with_cert)
        without_cert = _settings(temporal_address=proxy.address, **server_tls)
        assert not await _can_connect(without_cert)
        wrong_cert = _settings(
            temporal_address=proxy.address,
            temporal_tls_client_cert_path=stranger.cert,
            temporal_tls_client_key_path=stranger.key,
            **server_tls,
        )
        assert not await _can_connect(wrong_cert)


async def test_api_key_is_sent_as_a_bearer_token_over_tls(
    temporal_env: WorkflowEnvironment, pki: Pki
) -> None:
    server_ca = pki.server_ca
    async with TlsProxy(_dev_server(temporal_env), pki.server) as proxy:
        settings = _settings(
            temporal_address=proxy.address,
            temporal_api_key=API_KEY,
            temporal_tls_server_ca_cert_path=server_ca.pem.cert,
            temporal_tls_server_name=SERVER_NAME,
        )
        assert await _can_connect(settings)
        requests = proxy.request_headers()
        assert requests and all(h.get("authorization") == f"Bearer {API_KEY}" for h in requests)


async def test_api_key_alone_turns_tls_on(temporal_env: WorkflowEnvironment, pki: Pki) -> None:
    # Temporal Cloud with an API key needs nothing else: TLS with the system's roots. Here
    # the proxy's private CA is not among them, so the connection must fail (TLS was on).
    config = connect_config(_settings(temporal_address="x:7233", temporal_api_key=API_KEY))
    assert config["tls"] is True and config["api_key"] == API_KEY
    async with TlsProxy(_dev_server(temporal_env), pki.server) as proxy:
        assert not await _can_connect(
            _settings(temporal_address=proxy.address, temporal_api_key=API_KEY)
        )
    # ...and TEMPORAL_TLS=false turns it off (a local proxy or server without TLS).
    plain = connect_config(
        _settings(temporal_address="x:7233", temporal_api_key=API_KEY, temporal_tls=False)
    )
    assert plain["tls"] is False


async def test_profile_file_gives_address_namespace_and_tls(
    temporal_env: WorkflowEnvironment, pki: Pki, tmp_path: Path
) -> None:
    server_ca = pki.server_ca
    async with TlsProxy(_dev_server(temporal_env), pki.server) as proxy:
        profile = tmp_path / "temporal.toml"
        profile.write_text(
            "[profile.default]\n"
            'address = "127.0.0.1:1"\n'
            "[profile.staging]\n"
            f'address = "{proxy.address}"\n'
            'namespace = "default"\n'
            "[profile.staging.tls]\n"
            f'server_name = "{SERVER_NAME}"\n'
            f'server_ca_cert_path = "{server_ca.pem.cert}"\n'
        )
        os.environ["TEMPORAL_CONFIG_FILE"] = str(profile)
        os.environ["TEMPORAL_PROFILE"] = "staging"
        settings = _settings()
        assert await _can_connect(settings)


def test_profile_namespace_is_not_overridden_by_the_settings_default(tmp_path: Path) -> None:
    profile = tmp_path / "temporal.toml"
    profile.write_text('[profile.default]\naddress = "cloud:7233"\nnamespace = "agency.a1b2c"\n')
    os.environ["TEMPORAL_CONFIG_FILE"] = str(profile)
    config = connect_config(_settings())
    assert (config["target_host"], config["namespace"]) == ("cloud:7233", "agency.a1b2c")
    # A variable (or setting) of the standard name wins over the file.
    os.environ["TEMPORAL_NAMESPACE"] = "agency.override"
    config = connect_config(_settings())
    assert config["namespace"] == "agency.override"


def test_the_default_profile_file_in_home_is_read(tmp_path: Path) -> None:
    home_config = Path(os.environ["XDG_CONFIG_HOME"]) / "temporalio"
    home_config.mkdir(parents=True)
    (home_config / "temporal.toml").write_text('[profile.default]\naddress = "home:7233"\n')
    assert connect_config(_settings())["target_host"] == "home:7233"
    # `orchestrator dev` points TEMPORAL_CONFIG_FILE at /dev/null for its own dev server.
    os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
    with pytest.raises(SettingsError, match="missing setting TEMPORAL_ADDRESS"):
        connect_config(_settings())


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({}, "missing setting TEMPORAL_ADDRESS"),
        ({"TEMPORAL_PROFILE": "prod"}, "invalid Temporal client configuration: Profile 'prod'"),
        ({"TEMPORAL_CONFIG_FILE": "{bad}"}, "invalid Temporal client configuration: .*TOML"),
        ({"TEMPORAL_CONFIG_FILE": "{typo}"}, "invalid Temporal client configuration: .*TOML"),
    ],
)
def test_unusable_configuration_is_one_line(
    tmp_path: Path, env: dict[str, str], error: str
) -> None:
    (tmp_path / "bad.toml").write_text("not toml [[[\n")
    (tmp_path / "typo.toml").write_text('[profile.default]\naddres = "x:1"\n')
    for name, value in env.items():
        os.environ[name] = value.format(bad=tmp_path / "bad.toml", typo=tmp_path / "typo.toml")
    with pytest.raises(SettingsError, match=error) as raised:
        connect_config(_settings())
    assert "\n" not in str(raised.value.code)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("TEMPORAL_TLS", "maybe", "invalid setting TEMPORAL_TLS"),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", "/nonexistent/cert.pem", "TEMPORAL_TLS_CLIENT_CERT_PATH"),
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/nonexistent/ca.pem", "SERVER_CA_CERT_PATH"),
        ("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml", "invalid setting TEMPORAL_CONFIG"),
    ],
)
def test_bad_temporal_setting_is_one_line(name: str, value: str, error: str) -> None:
    os.environ[name] = value
    with pytest.raises(SettingsError, match=error):
        _settings()


def test_old_tls_names_still_work_with_a_warning(pki: Pki) -> None:
    client = pki.client
    os.environ["TEMPORAL_ADDRESS"] = "x:7233"
    os.environ["TEMPORAL_TLS_CERT_PATH"] = str(client.cert)
    os.environ["TEMPORAL_TLS_KEY_PATH"] = str(client.key)
    with capture_logs() as logs:
        config = connect_config(_settings())
    tls = config["tls"]
    assert not isinstance(tls, bool)
    assert tls.client_cert == client.cert.read_bytes()
    assert tls.client_private_key == client.key.read_bytes()
    warned = {e.get("setting") for e in logs if e["log_level"] == "warning"}
    assert warned == {"TEMPORAL_TLS_CERT_PATH", "TEMPORAL_TLS_KEY_PATH"}
