"""The production path, checked without an engine or a cluster: docker-compose.yml through
Docker Compose's own parser (`docker-compose config`), the Dockerfiles, and the Kubernetes
manifests rendered by kustomize and validated against Kubernetes' schemas. Every setting and
port in them is checked against what the code reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.gateway.settings import GatewaySettings
from services.generator.settings import GeneratorSettings
from services.retriever.settings import RetrieverSettings
from ui.gateway import UISettings

REPO = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, type[BaseSettings]] = {
    "retriever": RetrieverSettings,
    "generator": GeneratorSettings,
    "generator-cpu": GeneratorSettings,
    "gateway": GatewaySettings,
    "ui": UISettings,
}
# Read outside the services' settings objects: the data dir by every service, the keys file by
# the CLI (`supportbot ingest` inside a container).
SHARED_VARIABLES = {"SUPPORTBOT_DATA_DIR": "supportbot/core/settings.py", "SUPPORTBOT_API_KEYS_FILE": "supportbot/cli.py"}
UI_PORT = 8501


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: `make install` installs it"
    return found


def _env_prefix(settings: type[BaseSettings]) -> str:
    return settings.model_config.get("env_prefix", "")


def _known_variables(settings: type[BaseSettings]) -> set[str]:
    known = set()
    for name, field in settings.model_fields.items():
        known.add(f"{_env_prefix(settings)}{name}".upper())
        aliases = getattr(field.validation_alias, "choices", None) or []
        known.update(alias.upper() for alias in aliases if isinstance(alias, str))
    return known


def _load_settings(
    settings: type[BaseSettings], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """The settings object the service would build from this environment (pydantic checks the
    values); every SUPPORTBOT_ variable must be one that the code reads."""
    for key in list(os.environ):
        if key.startswith("SUPPORTBOT_"):
            monkeypatch.delenv(key)
    known = _known_variables(settings)
    for key, value in environment.items():
        if key in SHARED_VARIABLES:
            assert key in (REPO / SHARED_VARIABLES[key]).read_text()
        elif key.startswith("SUPPORTBOT_"):
            assert key in known, f"{key} is not a setting of {settings.__name__}"
        monkeypatch.setenv(key, str(value))
    return settings()


def _grpc_health_port(command: list[str] | str) -> int:
    text = " ".join(command) if isinstance(command, list) else command
    match = re.search(r"supportbot\.core\.healthcheck\W+127\.0\.0\.1:(\d+)", text)
    assert match, f"not a gRPC health check: {text}"
    return int(match.group(1))


# -- docker compose -----------------------------------------------------------------------------


def compose_config(*profiles: str) -> dict:
    arguments = [_tool("docker-compose")]
    for profile in profiles:
        arguments += ["--profile", profile]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "SUPPORTBOT_"))}
    result = subprocess.run(
        [*arguments, "config", "--format", "json"], cwd=REPO, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_for_both_generators() -> None:
    default = compose_config()
    assert {"qdrant", "redis", "retriever", "generator", "gateway", "ui"} <= set(default["services"])
    assert "generator-cpu" not in default["services"]
    cpu = compose_config("cpu")
    assert "generator" in cpu["services"]["generator-cpu"]["networks"]["default"]["aliases"]


def test_compose_services_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    config = compose_config("cpu")
    services = config["services"]
    loaded = {}
    for name, settings_class in SETTINGS.items():
        service = services[name]
        settings = loaded[name] = _load_settings(settings_class, service.get("environment", {}), monkeypatch)
        container_ports = {int(port) for port in service.get("expose", [])}
        container_ports |= {int(port["target"]) for port in service.get("ports", [])}
        if name == "ui":
            assert service["environment"]["STREAMLIT_SERVER_PORT"] == str(UI_PORT)
            assert UI_PORT in container_ports
            assert f"{UI_PORT}/_stcore/health" in " ".join(service["healthcheck"]["test"])
            continue
        assert settings.port in container_ports and settings.metrics_port in container_ports, name
        assert _grpc_health_port(service["healthcheck"]["test"]) == settings.port, name

    # Every address a service dials is another service of the file, at the port that one listens on.
    def target(address: str) -> tuple[str, int]:
        host, _, port = address.removeprefix("dns:///").rpartition(":")
        return host, int(port)

    gateway = loaded["gateway"]
    assert target(gateway.retriever_address) == ("retriever", loaded["retriever"].port)
    assert target(gateway.generator_address) == ("generator", loaded["generator"].port)
    assert gateway.generator_address.startswith("dns:///") and gateway.retriever_address.startswith("dns:///")
    assert target(loaded["ui"].gateway_address) == ("gateway", gateway.port)
    redis_url = urlparse(gateway.redis_url)
    assert (redis_url.hostname, redis_url.port or 6379) == ("redis", 6379)
    qdrant_url = urlparse(loaded["retriever"].qdrant_url)
    assert loaded["retriever"].backend == "server" and qdrant_url.hostname == "qdrant"
    assert str(qdrant_url.port) in services["qdrant"]["expose"]

    # The keys file every service reads is the one the `keys` service writes.
    keys_file = Path(services["keys"]["command"][-1])
    for name in ("retriever", "gateway", "ui"):
        assert loaded[name].api_keys_file == keys_file, name
        assert any(v["target"] == str(keys_file.parent) and v.get("read_only") for v in services[name]["volumes"])


def test_compose_uses_official_pinned_images_named_volumes_and_health_checks() -> None:
    config = compose_config("cpu")
    services = config["services"]
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:v")
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-alpine)?", services["redis"]["image"])
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes", "Redis keeps sessions with AOF persistence"
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image"
        if "build" in service:
            dockerfile = REPO / service["build"]["dockerfile"]
            assert dockerfile.exists(), dockerfile
        for volume in service.get("volumes", []):
            assert volume["type"] == "volume" and volume["source"] in config["volumes"], f"{name}: {volume}"
        if name != "keys":
            assert "healthcheck" in service, f"{name} has no health check"
    devices = services["generator"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "deploy" not in services["generator-cpu"]


# -- Dockerfiles --------------------------------------------------------------------------------

DOCKERFILES = {
    "services/retriever/Dockerfile": RetrieverSettings,
    "services/gateway/Dockerfile": GatewaySettings,
    "services/generator/Dockerfile": GeneratorSettings,
    "services/generator/Dockerfile.cpu": GeneratorSettings,
    "ui/Dockerfile": UISettings,
}


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


@pytest.mark.parametrize("relative", sorted(DOCKERFILES))
def test_dockerfiles_are_multi_stage_pinned_non_root_with_grpc_health_checks(relative: str) -> None:
    instructions = _instructions(REPO / relative)
    arguments = dict(
        value.split("=", 1) for kind, value in instructions if kind == "ARG" and "=" in value
    )
    stages = [value for kind, value in instructions if kind == "FROM"]
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    for stage in stages:
        image = stage.split()[0]
        image = arguments.get(image.strip("${}"), image)
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"unpinned base image {image}"
    runtime = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM"):]
    users = [value for kind, value in runtime if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runs as a non-root user"

    environment = {}
    for kind, value in instructions:
        if kind == "ENV":
            environment.update(re.findall(r"(\w+)=(\S+)", value))
    exposed = {int(port) for kind, value in instructions if kind == "EXPOSE" for port in value.split()}
    healthcheck = next(value for kind, value in instructions if kind == "HEALTHCHECK")
    settings_class = DOCKERFILES[relative]
    if settings_class is UISettings:
        assert environment["STREAMLIT_SERVER_PORT"] == str(UI_PORT) and exposed == {UI_PORT}
        assert "_stcore/health" in healthcheck
        return
    prefix = _env_prefix(settings_class).upper()
    port, metrics_port = int(environment[f"{prefix}PORT"]), int(environment[f"{prefix}METRICS_PORT"])
    defaults = settings_class()
    assert (port, metrics_port) == (defaults.port, defaults.metrics_port)
    assert exposed == {port, metrics_port}
    assert "supportbot.core.healthcheck" in healthcheck and f"${{{prefix}PORT}}" in healthcheck
