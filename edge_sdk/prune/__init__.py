"""Pruning, each method a plain function from model to model: importance scores (Michel et al.,
movement), structured removal of heads, FFN neurons and layers (physically smaller), unstructured
magnitude/movement sparsity on the cubic schedule, and low-rank factorization."""

from importlib import import_module

from ..errors import PruneError

_EXPORTS = {
    "Scores": "importance", "head_neuron_importance": "importance", "movement_scores": "importance",
    "PrunePlan": "plan", "plan_pruning": "plan", "apply_plan": "plan",
    "remove_heads": "structured", "remove_neurons": "structured", "remove_layers": "structured",
    "load_pruned": "load",
    "CubicSchedule": "schedule",
    "PruningCallback": "unstructured", "add_masks": "unstructured", "track_movement": "unstructured",
    "update_masks": "unstructured", "apply_masks": "unstructured", "sparsity": "unstructured",
    "Factorization": "lowrank", "factorize": "lowrank", "factorize_embeddings": "lowrank", "factorize_ffn": "lowrank",
}

__all__ = ["PruneError", *_EXPORTS.keys()]


def __getattr__(name):  # torch and transformers load only when a function is asked for
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
