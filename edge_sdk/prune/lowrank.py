"""Low-rank factorization by truncated SVD: the word-embedding table (ALBERT's factorized embedding,
[V, H] -> [V, r] then [r, H]) and FFN Linear layers ([out, in] -> [r, in] then [out, r]).

A factorized module becomes nn.Sequential(first factor, second factor): an Embedding (or Linear)
followed by a Linear, which the ONNX exporter writes as Gather/MatMul + MatMul. The ranks go into the
config's record (record.py), so `load_pruned` rebuilds the shapes. Factorize after pruning heads and
neurons: the pruning functions refuse factorized layers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..errors import PruneError
from .arch import encoder_layers, linear, names_for
from .record import read_record, write_record


@dataclass(frozen=True)
class Factorization:
    module: str  # path in the model
    rank: int
    params_before: int
    params_after: int
    relative_error: float  # ||W - first @ second||_F / ||W||_F, measured on the float32 factors

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _check_rank(rank: int, weight, path: str) -> None:
    full = min(weight.shape)
    if not 1 <= rank <= full:
        raise PruneError(f"rank {rank} for {path} {tuple(weight.shape)}: choose 1..{full} "
                         f"(it saves parameters below {weight.shape[0] * weight.shape[1] // sum(weight.shape)})")


def factored_like(module, rank: int):
    """The empty two-factor replacement of an Embedding or Linear (shapes only; load_pruned fills it)."""
    import torch

    if isinstance(module, torch.nn.Embedding):
        return torch.nn.Sequential(torch.nn.Embedding(module.num_embeddings, rank, padding_idx=module.padding_idx),
                                   torch.nn.Linear(rank, module.embedding_dim, bias=False))
    if isinstance(module, torch.nn.Linear):
        return torch.nn.Sequential(torch.nn.Linear(module.in_features, rank, bias=False),
                                   torch.nn.Linear(rank, module.out_features, bias=module.bias is not None))
    raise PruneError(f"a {type(module).__name__} cannot be factorized: only Embedding and Linear layers")


def factorize(module, rank: int, path: str = "module"):
    """(two-factor Sequential, relative Frobenius error) for an Embedding [V, H] or Linear [out, in]."""
    import torch

    weight = module.weight.detach()
    _check_rank(rank, weight, path)
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    out = factored_like(module, rank).to(weight.dtype)
    with torch.no_grad():
        if isinstance(module, torch.nn.Embedding):  # row i of the table: (U S)[i] @ V^T
            out[0].weight.copy_(u[:, :rank] * s[:rank])
            out[1].weight.copy_(vh[:rank].T)
            approx = out[0].weight.double() @ out[1].weight.double().T
        else:  # W = (U sqrt S) (sqrt S V^T): the same scale on both factors
            root = s[:rank].sqrt()
            out[0].weight.copy_(root[:, None] * vh[:rank])
            out[1].weight.copy_(u[:, :rank] * root)
            if module.bias is not None:
                out[1].bias.copy_(module.bias)
            approx = out[1].weight.double() @ out[0].weight.double()
    error = float(torch.linalg.norm(weight.double() - approx) / torch.linalg.norm(weight.double()).clamp_min(1e-30))
    return out.train(module.training), error


def _replace(model, path: str, rank: int) -> Factorization:
    module = model.get_submodule(path)
    before = _count(module)
    factors, error = factorize(module, rank, path)
    model.set_submodule(path, factors)
    return Factorization(path, rank, before, _count(factors), error)


def _record(model, done: list[Factorization]) -> None:
    record = read_record(model, layers=False)
    record.setdefault("low_rank", {}).update({f.module: f.rank for f in done})
    write_record(model, record)


def factorize_embeddings(model, rank: int, *, inplace: bool = False):
    """ALBERT-style: the word-embedding table [V, H] as [V, rank] then a [rank, H] projection.
    Returns (model, Factorization); parameters go from V*H to rank*(V + H)."""
    import torch

    model = model if inplace else copy.deepcopy(model)
    table = model.get_input_embeddings()
    if not isinstance(table, torch.nn.Embedding):
        raise PruneError(f"the input embeddings are a {type(table).__name__}, not an Embedding (already factorized?)")
    if model.get_output_embeddings() is not None:
        raise PruneError("the model ties its output layer to the embedding table; factorize classifiers only")
    path = next(name for name, module in model.named_modules() if module is table)
    done = _replace(model, path, rank)
    _record(model, [done])
    return model, done


def factorize_ffn(model, rank: int, *, layers=None, inplace: bool = False):
    """Both FFN Linear layers of the given encoder layers (default all) at `rank`.
    Returns (model, [Factorization per matrix]); each [out, in] goes from out*in to rank*(out + in)."""
    model = model if inplace else copy.deepcopy(model)
    names = names_for(model)
    stack = encoder_layers(model, names)
    chosen = range(len(stack)) if layers is None else layers
    prefix = next(name for name, module in model.named_modules() if module is stack)
    for i in chosen:
        if not 0 <= int(i) < len(stack):
            raise PruneError(f"layer {i} does not exist: the model has layers 0..{len(stack) - 1}")
        for path in (names.ffn_in, names.ffn_out):
            _check_rank(rank, linear(stack[int(i)], path).weight, f"{prefix}.{i}.{path}")
    done = [_replace(model, f"{prefix}.{int(i)}.{path}", rank)
            for i in chosen for path in (names.ffn_in, names.ffn_out)]
    _record(model, done)
    return model, done
