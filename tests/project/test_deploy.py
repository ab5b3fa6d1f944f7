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
from services.web.settings import WebSettings
from tests.paths import REPO
from ui.settings import UISettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "retriever": RetrieverSettings,
    "generator": GeneratorSettings,
    "generator-cpu": GeneratorSettings,
    "gateway": GatewaySettings,
    "web": WebSettings,
    "ui": UISettings,
}
# Read outside the services' settings objects: the data dir by every service, the keys file by
# the CLI (`supportbot ingest` inside a container).
SHARED_VARIABLES = {"SUPPORTBOT_DATA_DIR": "supportbot/core/settings.py", "SUPPORTBOT_API_KEYS_FILE": "supportbot/core/auth.py"}
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
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            known |= _known_variables(field.annotation)  # a nested group keeps its fields' variables
            continue
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


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """Literally `docker compose config`: the Docker CLI with the compose binary as its plugin
    (the client parses the file without an engine)."""
    import compose

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no Docker CLI here; test_compose_file_is_valid_for_both_generators runs the same parser")
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-compose").symlink_to(Path(compose.__file__).parent / "docker-compose")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "SUPPORTBOT_"))}
    for profile in ([], ["--profile", "cpu"]):
        result = subprocess.run(
            [docker, "compose", *profile, "config", "--quiet"], cwd=REPO, capture_output=True, text=True, check=False,
            env={**environment, "DOCKER_CONFIG": str(tmp_path)},
        )
        assert result.returncode == 0, result.stderr


def test_compose_services_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    config = compose_config("cpu")
    services = config["services"]
    loaded = {}
    for name, settings_class in SETTINGS.items():
        service = services[name]
        settings = loaded[name] = _load_settings(settings_class, service.get("environment", {}), monkeypatch)
        container_ports = {int(port) for port in service.get("expose", [])}
        container_ports |= {int(port["target"]) for port in service.get("ports", [])}
        if name == "web":
            assert settings.port in container_ports
            assert f"{settings.port}/healthz" in " ".join(service["healthcheck"]["test"])
            continue
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
    assert target(gateway.backends.retriever_address) == ("retriever", loaded["retriever"].port)
    assert target(gateway.backends.generator_address) == ("generator", loaded["generator"].port)
    assert gateway.backends.generator_address.startswith("dns:///") and gateway.backends.retriever_address.startswith("dns:///")
    assert target(loaded["ui"].gateway_address) == ("gateway", gateway.port)
    assert target(loaded["web"].gateway_address) == ("gateway", gateway.port)
    redis_url = urlparse(gateway.storage.redis_url)
    assert (redis_url.hostname, redis_url.port or 6379) == ("redis", 6379)
    qdrant_url = urlparse(loaded["retriever"].qdrant_url)
    assert loaded["retriever"].backend == "server" and qdrant_url.hostname == "qdrant"
    assert str(qdrant_url.port) in services["qdrant"]["expose"]

    # The keys file every service reads is the one the `keys` service writes.
    keys_file = Path(services["keys"]["command"][-1])
    for name in ("retriever", "gateway", "web", "ui"):
        # The gateway's is in its access settings (GatewaySettings.access).
        assert getattr(loaded[name], "access", loaded[name]).api_keys_file == keys_file, name
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


# -- Kubernetes ---------------------------------------------------------------------------------

KUBERNETES = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests promise to run on (gRPC probes are GA from 1.27) and the
# newest whose schemas kubernetes-validate ships; both must accept every object.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
OVERLAYS = ("production", "cpu")
SERVICE_SETTINGS = {
    "retriever": RetrieverSettings, "generator": GeneratorSettings, "gateway": GatewaySettings, "web": WebSettings,
    "ui": UISettings,
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Each overlay as `kubectl kustomize` renders it, with secret files made the way the
    README says (they are never committed)."""
    from supportbot.core.auth import create_local_keys

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render deploy/kubernetes"
    tree = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, tree, ignore=shutil.ignore_patterns("api-keys.json", "qdrant-api-key", "redis-password"))
    create_local_keys(tree / "secrets" / "api-keys.json")
    (tree / "secrets" / "qdrant-api-key").write_text(os.urandom(24).hex())
    (tree / "secrets" / "redis-password").write_text(os.urandom(24).hex())
    documents = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [kubectl, "kustomize", str(tree / "overlays" / overlay)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        documents[overlay] = [document for document in yaml.safe_load_all(result.stdout) if document]
    return documents


def _objects(documents: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _container_environment(container: dict, documents: list[dict]) -> dict[str, str]:
    """The container's variables as the kubelet would set them: ConfigMaps from envFrom first,
    then env with $(VAR) references expanded; values from Secrets stood in for by a placeholder."""
    config_maps = _objects(documents, "ConfigMap")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        value = variable.get("value", "secret-value" if "valueFrom" in variable else "")
        environment[variable["name"]] = re.sub(r"\$\((\w+)\)", lambda m: environment.get(m.group(1), m.group(0)), value)
    return environment


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_against_kubernetes_schemas(rendered: dict[str, list[dict]], overlay: str) -> None:
    import kubernetes_validate

    kinds = {document["kind"] for document in rendered[overlay]}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"} <= kinds
    for document in rendered[overlay]:
        for version in KUBERNETES_VERSIONS:
            # strict: an unknown or misspelled field is an error, not silently dropped.
            kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_match_the_code(rendered: dict[str, list[dict]], overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = rendered[overlay]
    deployments = _objects(documents, "Deployment")
    services = _objects(documents, "Service")
    secrets = _objects(documents, "Secret")
    assert set(deployments) == {*SERVICE_SETTINGS, "interaction-exporter"}
    loaded = {}
    for name, settings_class in {**SERVICE_SETTINGS, "interaction-exporter": GatewaySettings}.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0, name
        (container,) = pod["containers"]
        assert container["resources"]["requests"], f"{name} needs resource requests for scheduling and the HPA"
        settings = loaded[name] = _load_settings(settings_class, _container_environment(container, documents), monkeypatch)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        if name == "web":
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
            assert ports["http"] == settings.port
        elif name == "ui":
            assert container["readinessProbe"]["httpGet"]["path"] == "/_stcore/health"
            assert ports["http"] == UI_PORT
        else:
            assert (ports["grpc"], ports["metrics"]) == (settings.port, settings.metrics_port), name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == settings.port, f"{name} {probe}"
        if name == "interaction-exporter":
            continue
        # Its Service selects its pods and forwards to ports the container has.
        service = services[name]
        assert service["spec"]["selector"].items() <= deployments[name]["spec"]["template"]["metadata"]["labels"].items()
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)
        # Every Secret it reads is rendered, or is marked optional.
        references = [v["valueFrom"]["secretKeyRef"] for v in container.get("env", []) if "valueFrom" in v]
        references += [{"name": v["secret"]["secretName"]} for v in pod.get("volumes", []) if "secret" in v]
        for reference in references:
            assert reference["name"] in secrets or reference.get("optional"), f"{name}: no Secret {reference['name']}"
            if "key" in reference and reference["name"] in secrets:
                assert reference["key"] in secrets[reference["name"]]["data"]

    # The gateway dials headless Services by DNS, so gRPC sees (and round-robins over) every pod.
    gateway = loaded["gateway"]
    for backend, address in (("retriever", gateway.backends.retriever_address), ("generator", gateway.backends.generator_address)):
        assert address == f"dns:///{backend}:{services[backend]['spec']['ports'][0]['port']}"
        assert services[backend]["spec"]["clusterIP"] == "None"
        assert services[backend]["spec"]["ports"][0]["port"] == loaded[backend].port
    assert loaded["ui"].gateway_address == f"gateway:{loaded['gateway'].port}"
    assert loaded["web"].gateway_address == f"dns:///gateway:{loaded['gateway'].port}"

    # Serving gateways leave the log to one exporting replica, which takes no chat traffic and
    # alone mounts the log's volume (so ReadWriteOnce storage is enough).
    exporter = deployments["interaction-exporter"]
    assert not loaded["gateway"].storage.export_interactions and loaded["interaction-exporter"].storage.export_interactions
    assert exporter["spec"]["replicas"] == 1 and exporter["spec"]["strategy"]["type"] == "Recreate"
    exporter_labels = exporter["spec"]["template"]["metadata"]["labels"]
    assert not any(s["spec"]["selector"].items() <= exporter_labels.items() for s in services.values())
    (mount,) = [m for m in exporter["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] if m["name"] == "interactions"]
    assert Path(mount["mountPath"]) == loaded["interaction-exporter"].resolved_interaction_log_dir()
    claim = _objects(documents, "PersistentVolumeClaim")["supportbot-interactions"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]

    # Autoscaling for the stateless tiers, disruption budgets for every tier.
    autoscalers = _objects(documents, "HorizontalPodAutoscaler")
    assert {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers.values()} == {"gateway", "retriever"}
    budgets = _objects(documents, "PodDisruptionBudget")
    for budget in budgets.values():
        assert any(
            budget["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in deployments.values()
        )
    assert len(budgets) == len(SERVICE_SETTINGS)

    # Only gateways reach the backends' gRPC ports.
    (policy,) = _objects(documents, "NetworkPolicy").values()
    protected = set(policy["spec"]["podSelector"]["matchExpressions"][0]["values"])
    assert protected == {"retriever", "generator"}
    grpc_rule = next(rule for rule in policy["spec"]["ingress"] if "from" in rule)
    allowed = grpc_rule["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= deployments["gateway"]["spec"]["template"]["metadata"]["labels"].items()
    assert grpc_rule["ports"] == [{"port": "grpc"}]

    # The GPU generator asks for as many GPUs as its engine splits the model over.
    generator = deployments["generator"]["spec"]["template"]["spec"]["containers"][0]
    gpus = int(generator["resources"].get("limits", {}).get("nvidia.com/gpu", 0))
    if overlay == "production":
        assert gpus == loaded["generator"].tensor_parallel_size * loaded["generator"].pipeline_parallel_size
        assert generator["resources"]["requests"]["nvidia.com/gpu"] == str(gpus)
    else:
        assert gpus == 0 and generator["image"].startswith("supportbot/generator-cpu:")


def test_data_tier_values_fit_the_services(rendered: dict[str, list[dict]]) -> None:
    """Qdrant and Redis come from their upstream charts: their values must agree with what the
    retriever and gateway expect (service names, secrets, cluster size, the Sentinel master)."""
    qdrant = yaml.safe_load((KUBERNETES / "data" / "qdrant-values.yaml").read_text())
    redis_values = yaml.safe_load((KUBERNETES / "data" / "redis-values.yaml").read_text())
    deployments = _objects(rendered["production"], "Deployment")
    secrets = _objects(rendered["production"], "Secret")

    def env(name: str) -> dict[str, dict]:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        values = {key: {"value": value} for key, value in _container_environment(container, rendered["production"]).items()}
        return {**values, **{variable["name"]: variable for variable in container["env"] if "valueFrom" in variable}}

    retriever, gateway = env("retriever"), env("gateway")
    # Qdrant: distributed, enough nodes for the replicas, shards spread evenly over the nodes.
    assert qdrant["config"]["cluster"]["enabled"] is True
    nodes = qdrant["replicaCount"]
    shards = int(retriever["SUPPORTBOT_RETRIEVER_SHARD_NUMBER"]["value"])
    replication = int(retriever["SUPPORTBOT_RETRIEVER_REPLICATION_FACTOR"]["value"])
    assert nodes >= replication >= 2 and shards % nodes == 0
    assert "helm upgrade --install qdrant " in (KUBERNETES / "data" / "qdrant-values.yaml").read_text()
    assert urlparse(retriever["SUPPORTBOT_RETRIEVER_QDRANT_URL"]["value"]).hostname == "qdrant"
    qdrant_key = next(v for v in qdrant["env"] if v["name"] == "QDRANT__SERVICE__API_KEY")["valueFrom"]["secretKeyRef"]
    assert qdrant_key == retriever["SUPPORTBOT_RETRIEVER_QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert qdrant_key["name"] in secrets
    compose_qdrant = compose_config()["services"]["qdrant"]["image"]
    assert compose_qdrant.endswith(":" + qdrant["image"]["tag"]), "compose and Kubernetes run the same Qdrant"

    # Redis: Sentinel, with the master set and password the gateway uses, and AOF persistence.
    assert redis_values["sentinel"]["enabled"] and redis_values["architecture"] == "replication"
    assert redis_values["sentinel"]["masterSet"] == gateway["SUPPORTBOT_GATEWAY_REDIS_SENTINEL_MASTER"]["value"]
    assert "helm upgrade --install redis " in (KUBERNETES / "data" / "redis-values.yaml").read_text()
    assert gateway["SUPPORTBOT_GATEWAY_REDIS_SENTINELS"]["value"] == "redis:26379"
    password = gateway["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (password["name"], password["key"]) == (
        redis_values["auth"]["existingSecret"], redis_values["auth"]["existingSecretPasswordKey"]
    )
    assert password["name"] in secrets and redis_values["auth"]["sentinel"] is True
    assert "appendonly yes" in redis_values["commonConfiguration"]
    assert redis_values["replica"]["replicaCount"] >= 3 and redis_values["sentinel"]["quorum"] == 2
