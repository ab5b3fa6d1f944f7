"""LoRA adapters registered per collection in the generator's data directory, for
`supportbot tune` to write and the generator to serve.

Layout, under `<data_dir>/adapters/`:

    <collection>/v<N>/            the adapter's files (PEFT layout) and registration.json
    <collection>/current          the version served, e.g. "v3" (replaced atomically)

Registering copies the adapter into a temporary folder beside the versions, validates the copy
(a PEFT LoRA adapter whose weights open and fit the served model's layers, of a rank the engine
accepts), renames it into place, and only then points `current` at it: a corrupt, mismatched or
half-copied adapter (a full disk) is refused with the reason and the adapter served before stays.
The previous version is kept for a rollback (`rollback`).

The generator reads `current` on each request (one stat while it is unchanged), so a newly
registered version is served from the next request on, without a restart. The engine only
serves adapters when it was started with LoRA on: a generator started before its collections
had any adapter needs a restart to serve the first one (see GeneratorSettings.collection_adapters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WEIGHT_FILES = ("adapter_model.safetensors",)
KEPT_VERSIONS = 2


class AdapterRefused(ValueError):
    """An adapter that cannot be registered (corrupt, not LoRA, for another model); the reason
    is the message, and the adapter registered before stays."""


@dataclass(frozen=True)
class RegisteredAdapter:
    collection: str
    version: int
    path: Path

    @property
    def name(self) -> str:
        """How the generator's responses and the interaction log name it: "helpcenter@v3"."""
        return f"{self.collection}@v{self.version}"


def _base_dimensions(base_model: Path) -> set[int] | None:
    """The sizes of the base model's linear layers' inputs and outputs (None when its config
    cannot be read, e.g. a hub name: then shapes are not checked)."""
    try:
        config = json.loads((base_model / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    hidden = int(config["hidden_size"])
    heads = int(config.get("num_attention_heads", 1))
    head_dim = int(config.get("head_dim") or hidden // heads)
    kv_heads = int(config.get("num_key_value_heads", heads))
    return {
        hidden,
        int(config.get("intermediate_size", hidden)),
        heads * head_dim,
        kv_heads * head_dim,
    }


def validate_adapter(folder: Path, *, base_model: str, max_rank: int) -> dict[str, Any]:
    """The adapter's config when it can be served on `base_model`; AdapterRefused saying why not."""
    config_path = folder / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError as error:
        raise AdapterRefused(
            f"{folder} has no adapter_config.json: not a PEFT adapter folder"
        ) from error
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AdapterRefused(f"{config_path} is not readable JSON: {error}") from error
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise AdapterRefused(f"{config_path}: peft_type is {config.get('peft_type')!r}, not 'LORA'")
    rank = config.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise AdapterRefused(f"{config_path}: rank r={rank!r} is not a positive integer")
    if rank > max_rank:
        raise AdapterRefused(f"rank {rank} is over the generator's max_lora_rank of {max_rank}")
    trained_on = str(config.get("base_model_name_or_path") or "")
    if trained_on and Path(trained_on).name != Path(base_model).name:
        raise AdapterRefused(
            f"the adapter was trained on {Path(trained_on).name!r}; this generator serves {Path(base_model).name!r}"
        )
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).exists()), None)
    if weights is None:
        raise AdapterRefused(f"{folder} has no {' or '.join(WEIGHT_FILES)}")
    shapes = _weight_shapes(weights)
    if not any(".lora_A." in key for key in shapes):
        raise AdapterRefused(f"{weights.name} holds no LoRA weights (no lora_A tensors)")
    dimensions = _base_dimensions(Path(base_model))
    for key, shape in shapes.items():
        if len(shape) != 2:
            raise AdapterRefused(f"{key} has shape {shape}, not a matrix")
        inner, outer = (shape[0], shape[1]) if ".lora_A." in key else (shape[1], shape[0])
        if inner != rank:
            raise AdapterRefused(f"{key} has rank {inner}, the config says {rank}")
        if dimensions is not None and outer not in dimensions:
            raise AdapterRefused(
                f"{key} is {shape[0]}x{shape[1]}, which fits no layer of {Path(base_model).name} "
                f"(sizes {sorted(dimensions)}): an adapter for another model"
            )
    return config


def _weight_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
            # Reading every tensor catches a file cut short after its header.
            for key in handle.keys():  # noqa: SIM118
                handle.get_tensor(key)
    except Exception as error:  # noqa: BLE001 (safetensors raises several kinds)
        raise AdapterRefused(f"{weights.name} is corrupt: {error}") from error
    return shapes


class AdapterRegistry:
    def __init__(self, root: Path, *, base_model: str, max_rank: int) -> None:
        self.root = root
        self.base_model = base_model
        self.max_rank = max_rank
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], RegisteredAdapter | None]] = {}

    def _folder(self, collection: str) -> Path:
        if not COLLECTION_NAME.match(collection):
            raise AdapterRefused(f"{collection!r} is not a collection name")
        return self.root / collection

    def _versions(self, folder: Path) -> list[int]:
        return sorted(
            int(p.name[1:]) for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()
        )

    def current(self, collection: str) -> RegisteredAdapter | None:
        """The adapter served for the collection now (None: the base model)."""
        pointer = self._folder(collection) / "current"
        try:
            stat = pointer.stat()
            changed = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            return None
        changed = (stat.st_mtime_ns, stat.st_ino)
        cached = self._cache.get(collection)
        if cached is not None and cached[0] == changed:
            return cached[1]
        name = pointer.read_text().strip()
        path = pointer.parent / name
        adapter = (
            RegisteredAdapter(collection, int(name[1:]), path)
            if name[1:].isdigit() and path.is_dir()
            else None
        )
        self._cache[collection] = (changed, adapter)
        return adapter

    def collections(self) -> list[RegisteredAdapter]:
        if not self.root.is_dir():
            return []
        found = [
            self.current(p.name)
            for p in sorted(self.root.iterdir())
            if COLLECTION_NAME.match(p.name)
        ]
        return [a for a in found if a is not None]

    def register(
        self, collection: str, source: Path, details: dict[str, Any] | None = None
    ) -> RegisteredAdapter:
        """Copies, validates and serves `source` for the collection; AdapterRefused (and the
        adapter served before unchanged) when it cannot be."""
        validate_adapter(source, base_model=self.base_model, max_rank=self.max_rank)
        folder = self._folder(collection)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
            try:
                for name in ("adapter_config.json", *WEIGHT_FILES):
                    if (source / name).exists():
                        shutil.copy2(source / name, incoming / name)
                (incoming / "registration.json").write_text(
                    json.dumps(
                        {"registered_at": time.time(), "source": str(source), **(details or {})},
                        indent=2,
                    )
                )
                # The copy is what will be served: validated again (a full disk cuts files short).
                validate_adapter(incoming, base_model=self.base_model, max_rank=self.max_rank)
                version = max(self._versions(folder), default=0) + 1
                target = folder / f"v{version}"
                incoming.rename(target)
            except OSError as error:
                shutil.rmtree(incoming, ignore_errors=True)
                raise AdapterRefused(
                    f"could not copy the adapter into {folder}: {error.strerror or error}"
                ) from error
            except AdapterRefused:
                shutil.rmtree(incoming, ignore_errors=True)
                raise
            self._point(folder, f"v{version}")
            for old in self._versions(folder)[:-KEPT_VERSIONS]:
                shutil.rmtree(folder / f"v{old}", ignore_errors=True)
        return RegisteredAdapter(collection, version, target)

    def rollback(self, collection: str) -> RegisteredAdapter | None:
        """Serves the version before the current one (or the base model when there is none)."""
        folder = self._folder(collection)
        with self._lock:
            current = self.current(collection)
            earlier = [v for v in self._versions(folder) if current is None or v < current.version]
            if earlier:
                self._point(folder, f"v{earlier[-1]}")
            else:
                (folder / "current").unlink(missing_ok=True)
        return self.current(collection)

    @staticmethod
    def _point(folder: Path, name: str) -> None:
        pointer = folder / "current"
        temporary = folder / f".current-{os.getpid()}"
        temporary.write_text(name + "\n")
        os.replace(temporary, pointer)
