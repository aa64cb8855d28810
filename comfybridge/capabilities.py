"""What a backend can run: its node classes and the model files its loaders offer.

ComfyUI lists both in ``/object_info``: every node class, and for each loader input (such as
``CheckpointLoaderSimple.ckpt_name``) a combo whose options are the model files it found. A graph
can run on a backend only if every class exists there and every model it names is among those
options. Checking this before submitting turns ComfyUI's ``value_not_in_list`` rejection into a
message that names the backend, so a caller can pick another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog import Catalog
from .errors import ComfyError

# Loader inputs whose options are model files, and what to call them in messages. Any other
# combo whose options all look like model files counts too, as a "model".
MODEL_INPUTS = {
    "ckpt_name": "checkpoint",
    "lora_name": "LoRA",
    "vae_name": "VAE",
    "unet_name": "diffusion model",
    "clip_name": "text encoder",
    "clip_name1": "text encoder",
    "clip_name2": "text encoder",
    "clip_name3": "text encoder",
    "control_net_name": "ControlNet",
    "upscale_model_name": "upscale model",
    "style_model_name": "style model",
    "gligen_name": "GLIGEN model",
    "hypernetwork_name": "hypernetwork",
}
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


class BackendIncapable(ComfyError):
    """This backend lacks a node class or a model the workflow needs.

    Not retryable on the same backend (another backend may have it). ``problems`` name each
    missing class or model with its node.
    """

    def __init__(self, problems: list[str], *, url: str | None = None):
        self.problems = list(problems)
        self.url = url
        super().__init__("; ".join(self.problems) or "the backend cannot run this workflow")


def _node_key(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _looks_like_models(options: tuple) -> bool:
    return bool(options) and all(
        isinstance(o, str) and o.lower().endswith(MODEL_EXTENSIONS) for o in options
    )


class Capabilities:
    """Node classes and model names of one backend, from its ``/object_info`` reply."""

    def __init__(self, object_info: Mapping[str, Any], *, url: str | None = None):
        self.url = url
        self.catalog = Catalog(dict(object_info))
        self.classes = frozenset(object_info)
        # (class, input) -> (kind, options) for every loader input.
        self._model_inputs: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
        for class_type in self.classes:
            try:
                names = self.catalog.input_names(class_type)
            except (KeyError, AttributeError, TypeError):
                continue  # a malformed entry: the class exists, its inputs are unknown
            for input_name in names:
                spec = self.catalog.input_spec(class_type, input_name)
                if spec is None or spec.type != "COMBO":
                    continue
                if input_name in MODEL_INPUTS or _looks_like_models(spec.options):
                    kind = MODEL_INPUTS.get(input_name, "model")
                    self._model_inputs[(class_type, input_name)] = (kind, frozenset(spec.options))

    def has_class(self, class_type: str) -> bool:
        return class_type in self.classes

    def models(self) -> dict[str, list[str]]:
        """Model names by kind (``{"checkpoint": [...], "LoRA": [...]}``), sorted."""
        found: dict[str, set[str]] = {}
        for kind, options in self._model_inputs.values():
            found.setdefault(kind, set()).update(options)
        return {kind: sorted(names) for kind, names in sorted(found.items())}

    @property
    def checkpoints(self) -> list[str]:
        return self.models().get("checkpoint", [])

    def missing_for(self, graph: Mapping[str, Any]) -> list[str]:
        """What ``graph`` needs that this backend lacks, one line each; empty if it can run.

        Only classes and model files are checked: other input values are ComfyUI's validation
        to judge, and uploaded images are not there until the run uploads them.
        """
        where = self.url or "this backend"
        problems = []
        for node_id in sorted((str(k) for k in graph), key=_node_key):
            node = graph[node_id]
            if not isinstance(node, Mapping):
                continue
            class_type = node.get("class_type")
            if not isinstance(class_type, str) or not self.has_class(class_type):
                problems.append(f"node class {class_type!r} (node {node_id}) is not on {where}")
                continue
            inputs = node.get("inputs")
            for input_name, raw in (inputs if isinstance(inputs, Mapping) else {}).items():
                model = self._model_inputs.get((class_type, input_name))
                if model is None:
                    continue
                value = raw.get("__value__") if isinstance(raw, Mapping) else raw
                if not isinstance(value, str):
                    continue  # a link: the file is chosen by another node
                kind, options = model
                if value not in options:
                    problems.append(
                        f"{kind} {value!r} (node {node_id}, {class_type}.{input_name}) "
                        f"is not on {where}"
                    )
        return problems

    def check(self, graph: Mapping[str, Any]) -> None:
        """Raise ``BackendIncapable`` naming everything ``graph`` needs and this backend lacks."""
        problems = self.missing_for(graph)
        if problems:
            raise BackendIncapable(problems, url=self.url)

    def summary(self) -> str:
        """One line: class count and model names, for a health report."""
        parts = [f"{len(self.classes)} node classes"]
        for kind, names in self.models().items():
            shown = ", ".join(names[:10]) + (
                f", ... ({len(names)} in all)" if len(names) > 10 else ""
            )
            parts.append(f"{kind}s: {shown or 'none'}")
        return "; ".join(parts)
