"""Configuration parsing: distribution's keys, refregistry's token-endpoint keys,
and one-line errors for everything else."""
from pathlib import Path

import pytest

from reference_runtime.errors import RegistryError
from reference_runtime.registry.config import parse_config

MINIMAL = """
version: 0.1
storage:
  filesystem:
    rootdirectory: /srv/registry
"""


def test_minimal_defaults():
    config = parse_config(MINIMAL)
    assert (config.host, config.port) == ("0.0.0.0", 5000)
    assert config.rootdirectory == Path("/srv/registry")
    assert not config.delete_enabled and not config.tls and config.htpasswd is None and config.token is None


def test_full_distribution_config():
    config = parse_config("""
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
http:
  addr: 127.0.0.1:5001
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: /c.crt
    key: /c.key
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd
storage:
  filesystem:
    rootdirectory: /r
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
health:
  storagedriver:
    enabled: true
""")
    assert (config.host, config.port, config.delete_enabled, config.accesslog) == ("127.0.0.1", 5001, True, False)
    assert config.tls_certificate == Path("/c.crt") and config.tls_key == Path("/c.key")
    assert config.htpasswd.realm == "basic-realm" and config.htpasswd.path == Path("/auth/htpasswd")
    assert any("storage.cache" in w for w in config.warnings) and any("health" in w for w in config.warnings)


def test_token_config_with_endpoint():
    config = parse_config(MINIMAL + """
auth:
  token:
    realm: https://127.0.0.1:5000/auth/token
    service: reg
    issuer: iss
    rootcertbundle: /roots.pem
    signingkey: /k.pem
    signingcert: /k.crt
    htpasswd: /users
    expiration: 60
""")
    token = config.token
    assert (token.service, token.issuer, token.expiration, token.realm_path) == ("reg", "iss", 60, "/auth/token")
    assert token.serves_endpoint


def test_token_config_without_endpoint_is_distributions():
    config = parse_config(MINIMAL + """
auth:
  token: {realm: "http://auth.example/token", service: s, issuer: i, rootcertbundle: /r.pem}
""")
    assert not config.token.serves_endpoint and config.token.expiration == 300


@pytest.mark.parametrize("addr,expected", [("[::1]:5000", ("::1", 5000)), (":443", ("0.0.0.0", 443)),
                                           ("localhost:0", ("localhost", 0))])
def test_addr(addr, expected):
    config = parse_config(MINIMAL + f"http:\n  addr: '{addr}'\n")
    assert (config.host, config.port) == expected


@pytest.mark.parametrize("text,message", [
    ("", "mapping"),
    ("version: 0.1\nstorage: {filesystem: {rootdirectory: /r}}\nbogus: 1\n", "unknown configuration key 'bogus'"),
    ("version: 0.2\nstorage: {filesystem: {rootdirectory: /r}}\n", "unsupported configuration version"),
    ("storage: {filesystem: {rootdirectory: /r}}\n", "version is required"),
    ("version: 0.1\n", "storage is required"),
    ("version: 0.1\nstorage: {s3: {bucket: b}}\n", "storage driver 's3' is not supported"),
    ("version: 0.1\nstorage: {filesystem: {rootdirectory: /r, colour: red}}\n", "storage.filesystem.colour"),
    ("version: 0.1\nstorage: {filesystem: {rootdirectory: /r}, delete: {enabled: yes please}}\n", "true or false"),
    (MINIMAL + "http: {addr: nope}\n", "not host:port"),
    (MINIMAL + "http: {addr: '::1:5000'}\n", "brackets"),
    (MINIMAL + "http: {tls: {certificate: /c}}\n", "both certificate and key"),
    (MINIMAL + "auth: {htpasswd: {realm: r}}\n", "auth.htpasswd.path is required"),
    (MINIMAL + "auth: {htpasswd: {realm: r, path: /p}, token: {realm: 'http://x/t', service: s, issuer: i, "
               "rootcertbundle: /r}}\n", "one scheme"),
    (MINIMAL + "auth: {token: {realm: 'http://x/t', service: s, issuer: i, rootcertbundle: /r, signingkey: /k}}\n",
     "go together"),
    (MINIMAL + "auth: {token: {realm: 'http://x/t', service: s, issuer: i, rootcertbundle: /r, expiration: -1}}\n",
     "positive"),
    (MINIMAL + "auth: {token: {realm: 'not a url', service: s, issuer: i, rootcertbundle: /r}}\n", "http(s) URL"),
    ("version: 0.1\nstorage: [\n", "malformed YAML"),
    ("- a\n- b\n", "mapping"),
])
def test_bad_configs_are_one_line_errors(text, message):
    with pytest.raises(RegistryError) as info:
        parse_config(text, source="cfg.yml")
    assert message in str(info.value)
    assert "\n" not in str(info.value) and str(info.value).startswith("cfg.yml: ")


@pytest.mark.parametrize("example", sorted((Path(__file__).parents[2] / "fixtures" / "registry").glob("*.yml")),
                         ids=lambda p: p.name)
def test_example_configs_parse(example):
    config = parse_config(example.read_text(), source=str(example))
    assert config.warnings == ()
    assert config.rootdirectory == Path("/var/lib/refregistry")


def test_there_are_example_configs():
    assert len(list((Path(__file__).parents[2] / "fixtures" / "registry").glob("*.yml"))) == 3
