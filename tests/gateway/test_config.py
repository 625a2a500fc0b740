"""Configuration: defaults, layering (file < env < flags), normalisation and every refusal to start
(res-protocol.md §6 and conformance items 199–200, "AF")."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import Config, ConfigError, load_config, parse_args, read_config_file

NO_ENV: dict[str, str] = {}


def load(*argv: str, env: dict[str, str] | None = None) -> Config:
    return load_config(list(argv), NO_ENV if env is None else env)


def write_json(path: Path, data: dict[str, Any]) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# --- defaults ---------------------------------------------------------------------------------------


@pytest.mark.catalog("AF-199")
def test_defaults_match_resgate_1_8_0() -> None:
    config = load()
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.nats_creds == "" and config.nats_cert == "" and config.nats_key == ""
    assert config.nats_root_cas == []
    assert config.request_timeout == 3000
    assert config.buffer_size == 8192
    assert config.debug is False and config.trace is False
    assert config.addr == "0.0.0.0"
    assert config.port == 8080
    assert config.ws_path == "/"
    assert config.api_path == "/api/"
    assert config.metrics_port == 0
    assert config.api_encoding == "json"
    assert config.header_auth is None and config.ws_header_auth is None
    assert config.allow_origin == "*" and config.allowed_origins is None
    assert config.put_method is None and config.delete_method is None and config.patch_method is None
    assert config.tls is False and config.cert_file == "" and config.key_file == ""
    assert config.ws_compression is False
    assert config.reset_throttle == 0 and config.reference_throttle == 0


def test_pyresgate_extension_defaults() -> None:
    config = load()
    assert config.cache_eviction_delay == 5000
    assert config.cache_eviction_delay_s == 5.0
    assert config.admin_port == 9090
    assert config.exit_on_nats_loss is False


def test_config_is_frozen() -> None:
    config = load()
    with pytest.raises(ValidationError, match="frozen"):
        config.port = 1


def test_fields_accept_resgate_keys_and_python_names() -> None:
    assert Config(natsUrl="nats://a:1").nats_url == "nats://a:1"
    assert Config(nats_url="nats://b:2").nats_url == "nats://b:2"


def test_nats_url_counts_as_configured_only_when_given_somewhere(tmp_path: Path) -> None:
    assert load().nats_url_configured is False
    assert load("-n", "nats://127.0.0.1:4222").nats_url_configured is True
    assert load(env={"RESGATE_NATS_URL": "nats://x:1"}).nats_url_configured is True
    assert load("-c", write_json(tmp_path / "c.json", {"natsUrl": "nats://y:1"})).nats_url_configured is True


# --- precedence -------------------------------------------------------------------------------------


def test_file_is_overridden_by_env_which_is_overridden_by_flags(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "config.json",
        {
            "natsUrl": "nats://file:1",
            "port": 1001,
            "wsPath": "/file",
            "debug": True,
            "apiEncoding": "jsonflat",
        },
    )
    env = {"RESGATE_PORT": "2002", "RESGATE_WS_PATH": "/env", "RESGATE_DEBUG": "false"}
    config = load("-c", path, "--port", "3003", env=env)
    assert config.nats_url == "nats://file:1"  # file only
    assert config.api_encoding == "jsonflat"  # file only
    assert config.ws_path == "/env"  # env beats file
    assert config.debug is False  # env beats file
    assert config.port == 3003  # flag beats env and file


def test_flag_false_overrides_file_true(tmp_path: Path) -> None:
    path = write_json(tmp_path / "config.json", {"debug": True, "tls": False})
    assert load("-c", path, "--debug=false").debug is False


def test_config_file_can_be_named_by_resgate_config_env(tmp_path: Path) -> None:
    path = write_json(tmp_path / "config.json", {"port": 4444})
    assert load(env={"RESGATE_CONFIG": path}).port == 4444


def test_config_file_keys_match_case_insensitively_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = write_json(tmp_path / "config.json", {"NATSURL": "nats://n:1", "ApiPath": "/x", "unknownKey": 1})
    config = load("-c", path)
    assert config.nats_url == "nats://n:1"
    assert config.api_path == "/x/"


def test_readme_tls_keys_are_ignored_like_resgate_does(tmp_path: Path) -> None:
    # §5.13 item 11: resgate's README documents tlsCert/tlsKey, but only certFile/keyFile are read.
    path = write_json(tmp_path / "config.json", {"tlsCert": "a.pem", "tlsKey": "a.key"})
    config = load("-c", path)
    assert config.cert_file == "" and config.key_file == ""
    path = write_json(tmp_path / "config2.json", {"tls": True, "certFile": "a.pem", "keyFile": "a.key"})
    config = load("-c", path)
    assert (config.tls, config.cert_file, config.key_file) == (True, "a.pem", "a.key")


def test_env_values_are_parsed_per_type() -> None:
    env = {
        "RESGATE_NATS_ROOT_CAS": "a.pem, b.pem",
        "RESGATE_WS_COMPRESSION": "true",
        "RESGATE_REFERENCE_THROTTLE": "7",
        "RESGATE_ADMIN_PORT": "0",
        "RESGATE_EXIT_ON_NATS_LOSS": "1",
        "RESGATE_HEADER_AUTH": "",  # empty = unset
        "RESGATE_ADDR": "",  # "" is a real value for addr: all interfaces
    }
    config = load(env=env)
    assert config.nats_root_cas == ["a.pem", "b.pem"]
    assert config.ws_compression is True
    assert config.reference_throttle == 7
    assert config.admin_port == 0
    assert config.exit_on_nats_loss is True
    assert config.header_auth is None
    assert config.addr == "" and config.listen_host is None
    assert load(env={"RESGATE_NATS_ROOT_CAS": '["x.pem"]'}).nats_root_cas == ["x.pem"]


def test_env_vars_without_the_prefix_are_ignored() -> None:
    assert load(env={"NATS_URL": "nats://other:1", "PORT": "1"}).port == 8080


# --- flags ------------------------------------------------------------------------------------------


def test_single_and_double_dash_flags_are_the_same() -> None:
    assert load("-nats", "nats://a:1").nats_url == "nats://a:1"
    assert load("--nats", "nats://a:1").nats_url == "nats://a:1"
    assert load("-n=nats://a:1").nats_url == "nats://a:1"
    assert load("--port=1234").port == 1234
    assert load("-apiencoding", "jsonflat").api_encoding == "jsonflat"


def test_every_resgate_flag_sets_its_setting() -> None:
    config = load(
        "-n", "nats://n:1", "--creds", "c.creds", "--natscert", "c.pem", "--natskey", "c.key",
        "--natsrootca", "r1.pem", "--natsrootca", "r2.pem", "-r", "1500", "-i", "127.0.0.1", "-p", "8081",
        "-w", "/ws", "-a", "/web", "-m", "8091", "--apiencoding", "JSONFLAT", "-u", "vault.auth",
        "-t", "vault.wsauth", "--alloworigin", "http://a.io", "--alloworigin", "http://b.io",
        "--putmethod", "set", "--deletemethod", "delete", "--patchmethod", "patch",
        "--tls", "--tlscert", "s.pem", "--tlskey", "s.key", "--wscompression",
        "--resetthrottle", "3", "--referencethrottle", "4",
        "--adminport", "9091", "--cacheevictiondelay", "0", "--exitonnatsloss",
    )  # fmt: skip
    assert config.nats_url == "nats://n:1"
    assert (config.nats_creds, config.nats_cert, config.nats_key) == ("c.creds", "c.pem", "c.key")
    assert config.nats_root_cas == ["r1.pem", "r2.pem"]
    assert config.request_timeout == 1500
    assert (config.addr, config.port, config.ws_path, config.api_path) == ("127.0.0.1", 8081, "/ws", "/web/")
    assert config.metrics_port == 8091
    assert config.api_encoding == "jsonflat"
    assert config.header_auth_parts == ("vault", "auth")
    assert config.ws_header_auth_parts == ("vault", "wsauth")
    assert config.allowed_origins == ["http://a.io", "http://b.io"]
    assert (config.put_method, config.delete_method, config.patch_method) == ("set", "delete", "patch")
    assert (config.tls, config.cert_file, config.key_file) == (True, "s.pem", "s.key")
    assert config.ws_compression is True
    assert (config.reset_throttle, config.reference_throttle) == (3, 4)
    assert (config.admin_port, config.cache_eviction_delay, config.exit_on_nats_loss) == (9091, 0, True)


def test_debug_trace_flags() -> None:
    assert (load("-D").debug, load("-D").trace) == (True, False)
    assert (load("-V").debug, load("-V").trace) == (False, True)
    assert (load("-DV").debug, load("-DV").trace) == (True, True)


def test_empty_header_auth_flag_unsets_the_file_value(tmp_path: Path) -> None:
    path = write_json(tmp_path / "config.json", {"headerAuth": "vault.auth"})
    assert load("-c", path).header_auth == "vault.auth"
    assert load("-c", path, "-u", "").header_auth is None


def test_help_and_version_flags_are_reported_not_applied() -> None:
    assert parse_args(["-h"]).show_help is True
    assert parse_args(["--version"]).show_version is True
    assert parse_args(["-v"]).values == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "eighty"], "-p"),
        (["--port"], "flag needs an argument: -port"),
        (["--nosuchflag"], "flag provided but not defined: -nosuchflag"),
        (["-D=maybe"], "-D"),
        (["stray"], "unexpected argument"),
        (["---port", "1"], "bad flag syntax"),
    ],
)
def test_malformed_command_lines_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(argv, NO_ENV)


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.catalog("AF-199")
@pytest.mark.parametrize(
    ("given", "effective"), [("/api", "/api/"), ("/api/", "/api/"), ("/", "/"), ("x", "/x/")]
)
def test_api_path_always_ends_with_a_slash(given: str, effective: str) -> None:
    assert load("-a", given).api_path == effective


def test_port_zero_means_8080() -> None:
    assert load("-p", "0").port == 8080


@pytest.mark.parametrize("seconds", [1, 5, 10])
def test_request_timeout_of_10_or_less_is_seconds_with_deprecation_warning(
    seconds: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.config"):
        config = load("-r", str(seconds))
    assert config.request_timeout == seconds * 1000
    assert config.request_timeout_s == seconds
    assert any("DEPRECATED" in record.getMessage() for record in caplog.records)


def test_request_timeout_above_10_is_milliseconds_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.config"):
        assert load("-r", "11").request_timeout == 11
    assert not caplog.records


def test_api_encoding_is_case_insensitive_and_stored_lower_case() -> None:
    assert load("--apiencoding", "JsonFlat").api_encoding == "jsonflat"
    assert load("--apiencoding", "JSON").api_encoding == "json"


def test_allow_origin_is_lower_cased_and_sorted() -> None:
    config = load("--alloworigin", "https://Resgate.IO;http://localhost:8080")
    assert config.allow_origin == "http://localhost:8080;https://resgate.io"
    assert config.allowed_origins == ["http://localhost:8080", "https://resgate.io"]


@pytest.mark.parametrize("addr", ["0.0.0.0", "127.0.0.1", "::", "::1", ""])
def test_addr_accepts_ip_literals_and_empty(addr: str) -> None:
    assert load("-i", addr).addr == addr


def test_ipv6_listen_address_is_bracketed() -> None:
    assert load("-i", "::1", "-p", "81").listen_address == "[::1]:81"
    assert load().listen_address == "0.0.0.0:8080"


def test_header_auth_splits_at_the_last_dot() -> None:
    config = load("-u", "auth.vault.login", "-t", "a.b")
    assert config.header_auth_parts == ("auth.vault", "login")
    assert config.ws_header_auth_parts == ("a", "b")


# --- refusals (AF-199) ------------------------------------------------------------------------------


@pytest.mark.catalog("AF-199")
@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["-i", "localhost"], "addr"),
        (["-i", "999.1.1.1"], "addr"),
        (["-i", "[::1]"], "addr"),
        (["-u", "vault"], "headerAuth"),
        (["-u", "vault?q=1.method"], "headerAuth"),
        (["-u", "vault."], "headerAuth"),
        (["-u", ".method"], "headerAuth"),
        (["-t", "vault"], "wsHeaderAuth"),
        (["-t", "vault?q=1.method"], "wsHeaderAuth"),
        (["--alloworigin", ""], "allowOrigin"),
        (["--alloworigin", ";http://x"], "allowOrigin"),
        (["--alloworigin", "http://x;*"], "allowOrigin"),
        (["--alloworigin", "http://this.is/invalid"], "allowOrigin"),
        (["--alloworigin", "http://x/"], "allowOrigin"),
        (["--alloworigin", "http://x?a=1"], "allowOrigin"),
        (["--alloworigin", "http://x#f"], "allowOrigin"),
        (["--alloworigin", "http://user@x"], "allowOrigin"),
        (["--alloworigin", "localhost"], "allowOrigin"),
        (["--putmethod", "set.value"], "putMethod"),
        (["--deletemethod", "del.ete"], "deleteMethod"),
        (["--patchmethod", "pa.tch"], "patchMethod"),
        (["--putmethod", ""], None),  # empty on the command line = unset, not an error
        (["-p", "8080", "-m", "8080"], "metricsPort"),
        (["-m", "8080"], "metricsPort"),
        (["--apiencoding", "xml"], "apiEncoding"),
        (["-p", "65536"], "port"),
        (["-p", "-1"], "port"),
        (["-m", "70000"], "metricsPort"),
        (["-r", "-1"], "requestTimeout"),
        (["--resetthrottle", "-1"], "resetThrottle"),
        (["--natscert", "c.pem"], "natsKey"),
        (["--natskey", "c.key"], "natsCert"),
        (["--tls"], "certFile"),
        (["--tls", "--tlscert", "c.pem"], "keyFile"),
        (["--adminport", "8080"], "adminPort"),
        (["--cacheevictiondelay", "-5"], "cacheEvictionDelay"),
    ],
)
def test_invalid_settings_refuse_to_start_naming_the_key(argv: list[str], key: str | None) -> None:
    if key is None:
        load(*argv)
        return
    with pytest.raises(ConfigError) as info:
        load(*argv)
    message = str(info.value)
    assert key in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"headerAuth": ""}, "headerAuth"),
        ({"port": "eighty"}, "port"),
        ({"natsRootCAs": [1]}, "natsRootCAs"),
        ({"debug": "perhaps"}, "debug"),
        ({"allowOrigin": "http://a.io;"}, "allowOrigin"),
    ],
)
def test_invalid_config_file_values_name_the_resgate_key(
    tmp_path: Path, data: dict[str, Any], key: str
) -> None:
    path = write_json(tmp_path / "config.json", data)
    with pytest.raises(ConfigError, match=f"invalid {key} setting"):
        load("-c", path)


def test_invalid_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="invalid port setting"):
        load(env={"RESGATE_PORT": "x"})


def test_config_error_is_raised_by_direct_construction_too() -> None:
    with pytest.raises(ConfigError, match="addr"):
        Config(addr="nowhere")


def test_malformed_json_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON in config file") as info:
        load("-c", str(path))
    assert "\n" not in str(info.value)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load("-c", str(path))


# --- config file creation ---------------------------------------------------------------------------


def test_missing_config_file_is_created_with_effective_settings(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    config = load("-c", str(path), "-p", "8123", "--alloworigin", "HTTP://B.io;http://a.io")
    written = json.loads(path.read_text())
    assert written["port"] == 8123
    assert written["natsUrl"] == "nats://127.0.0.1:4222"
    assert written["apiPath"] == "/api/"
    assert written["allowOrigin"] == "http://a.io;http://b.io"
    assert written["headerAuth"] is None
    assert "certFile" in written and "keyFile" in written
    assert set(written) >= {"requestTimeout", "bufferSize", "wsPath", "metricsPort", "apiEncoding"}
    # Reading it back gives the same settings.
    assert load("-c", str(path)) == config


def test_invalid_settings_do_not_create_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    with pytest.raises(ConfigError):
        load("-c", str(path), "-i", "nowhere")
    assert not path.exists()


def test_existing_config_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"port": 8200}')
    load("-c", str(path), "-p", "8300")
    assert path.read_text() == '{"port": 8200}'


def test_read_config_file_returns_none_for_missing_file(tmp_path: Path) -> None:
    assert read_config_file(tmp_path / "missing.json") is None
