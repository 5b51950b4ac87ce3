"""Structured pruning, importance scores and unstructured sparsity on tiny random BERT and MPNet
classifiers (3 layers, 4 heads of 8, FFN 64): removal equals masking, nothing removed is bit-identical,
save/load round trips, ONNX export, the cubic schedule against its formula, bad requests refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_bert
from test_distill import one_torch_thread, tiny_teacher, write_data  # noqa: F401  (an autouse fixture)

from edge_sdk.prune import (
    CubicSchedule,
    PruneError,
    PruningCallback,
    add_masks,
    apply_masks,
    apply_plan,
    head_neuron_importance,
    load_pruned,
    movement_scores,
    plan_pruning,
    remove_heads,
    remove_layers,
    remove_neurons,
    sparsity,
    track_movement,
    update_masks,
)
from edge_sdk.prune.arch import encoder_layers, names_for

HEADS, HEAD, FFN, LAYERS, LABELS = 4, 8, 64, 3, 3


def tiny(arch: str, seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification

    config_cls, model_cls = {"bert": (BertConfig, BertForSequenceClassification),
                             "mpnet": (MPNetConfig, MPNetForSequenceClassification)}[arch]
    config = config_cls(vocab_size=120, hidden_size=HEADS * HEAD, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=FFN, max_position_embeddings=64, num_labels=LABELS)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return model_cls(config).eval()


def batch(seed: int = 1, n: int = 4, length: int = 9) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, -3:] = 0  # some padding, so masks are exercised
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(n) % LABELS}


def logits(model, b=None):
    b = b or batch()
    with torch.no_grad():
        return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def gated(model, heads=None, neurons=None):
    """Logits of `model` with the given heads/neurons zeroed at the inputs of the projections after them."""
    names = names_for(model)
    handles = []
    for index, layer in enumerate(encoder_layers(model)):
        for path, units, width in ((names.out, (heads or {}).get(index, ()), HEAD),
                                   (names.ffn_out, (neurons or {}).get(index, ()), 1)):
            gate = torch.ones(layer.get_submodule(path).in_features)
            for u in units:
                gate[u * width:(u + 1) * width] = 0
            handles.append(layer.get_submodule(path).register_forward_pre_hook(lambda m, a, g=gate: (a[0] * g,)))
    try:
        return logits(model)
    finally:
        for h in handles:
            h.remove()


ARCHS = ["bert", "mpnet"]


@pytest.mark.parametrize("arch", ARCHS)
def test_nothing_pruned_is_bit_identical(arch):
    model = tiny(arch)
    scores = head_neuron_importance(model, [batch()])
    plan = plan_pruning(scores.heads, scores.neurons, keep_heads=1.0, keep_neurons=1.0)
    assert plan.heads == {} and plan.neurons == {} and plan.layers == ()
    same = apply_plan(model, plan)
    assert same is not model and params(same) == params(model)
    assert torch.equal(logits(same), logits(model))
    # Slicing with every index kept (the loader's path for an unpruned layer) is exact too.
    from edge_sdk.prune.structured import shrink_attention, shrink_ffn

    names = names_for(same)
    for layer in encoder_layers(same):
        shrink_attention(layer, names, list(range(HEADS)), list(range(HEADS)))
        shrink_ffn(layer, names, list(range(FFN)))
    assert torch.equal(logits(same), logits(model))


@pytest.mark.parametrize("arch", ARCHS)
def test_removing_heads_and_neurons_equals_masking_them(arch):
    model = tiny(arch)
    heads, neurons = {0: [1, 3], 2: [0]}, {1: list(range(0, FFN, 2)), 2: [5]}
    pruned = remove_neurons(remove_heads(model, heads), neurons)
    names = names_for(pruned)
    layers = encoder_layers(pruned)
    assert [layer.get_submodule(names.query).out_features for layer in layers] == [2 * HEAD, 4 * HEAD, 3 * HEAD]
    assert [layer.get_submodule(names.ffn_in).out_features for layer in layers] == [FFN, FFN // 2, FFN - 1]
    hidden = HEADS * HEAD
    per_head = 3 * (hidden * HEAD + HEAD) + hidden * HEAD  # q, k, v rows with bias; output columns
    per_neuron = hidden + 1 + hidden  # first Linear's row and bias; second Linear's column
    assert params(model) - params(pruned) == 3 * per_head + (FFN // 2 + 1) * per_neuron
    # MPNet: the shared relative position bias must follow each layer's kept heads.
    np.testing.assert_allclose(logits(pruned), gated(model, heads, neurons), rtol=0, atol=2e-6)
    assert pruned.config.edge_sdk_structure == {"layers": [0, 1, 2], "heads": [[0, 2], [0, 1, 2, 3], [1, 2, 3]],
                                                "intermediate_sizes": [FFN, FFN // 2, FFN - 1]}
    # Positions refer to the layer as it is now: removing position 1 of [0, 2] removes original head 2.
    again = remove_heads(pruned, {0: [1]})
    assert again.config.edge_sdk_structure["heads"][0] == [0]
    np.testing.assert_allclose(logits(again), gated(model, {0: [1, 2, 3], 2: [0]}, neurons), rtol=0, atol=2e-6)


def test_removing_layers_equals_a_student_of_the_kept_layers():
    from edge_sdk.distill.student import make_student

    model = tiny("bert")
    smaller = remove_layers(model, [1])
    assert smaller.config.num_hidden_layers == 2 and len(encoder_layers(smaller)) == 2
    assert torch.equal(logits(smaller), logits(make_student(model, (0, 2))))
    # On a pruned model too (make_student cannot: it builds full-width layers); heads follow their layer.
    pruned = remove_layers(remove_heads(model, {2: [0]}), [0])
    assert pruned.config.edge_sdk_structure["layers"] == [1, 2]
    assert pruned.config.edge_sdk_structure["heads"] == [[0, 1, 2, 3], [1, 2, 3]]


@pytest.mark.parametrize("arch", ARCHS)
def test_save_and_load_pruned_round_trips(tmp_path, arch):
    from transformers import AutoModelForSequenceClassification

    model = tiny(arch)
    scores = head_neuron_importance(model, [batch(1), batch(2)])
    plan = plan_pruning(scores.heads, scores.neurons, keep_heads=0.5, keep_neurons=0.5, scope="global",
                        drop_layers=[1])
    pruned = apply_plan(model, plan)
    pruned.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["edge_sdk_structure"]
    assert saved == pruned.config.edge_sdk_structure and saved["layers"] == [0, 2]
    loaded = load_pruned(tmp_path, attn_implementation="eager")
    assert type(loaded) is type(model) and params(loaded) == params(pruned)
    assert torch.equal(logits(loaded), logits(pruned))
    # transformers 5 alone rebuilds full-width layers and refuses the smaller tensors.
    with pytest.raises(RuntimeError, match="mismatch"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)


def test_uniform_ffn_pruning_also_reloads_with_plain_from_pretrained(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = tiny("bert")
    scores = head_neuron_importance(model, [batch()])
    pruned = apply_plan(model, plan_pruning(neuron_scores=scores.neurons, keep_neurons=0.25))
    assert pruned.config.intermediate_size == 16
    pruned.save_pretrained(tmp_path)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert torch.equal(logits(plain), logits(pruned))


def test_plan_removes_the_lowest_scores_per_layer_or_globally():
    heads = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.7, 0.6], [0.05, 0.04, 0.03, 0.02]])
    per_layer = plan_pruning(heads, keep_heads=0.5)
    assert per_layer.heads == {0: (1, 3), 1: (0, 3), 2: (2, 3)}
    # Global: 6 of 12 kept; layer 2's best head survives although every score there is lower.
    assert plan_pruning(heads, keep_heads=0.5, scope="global").heads == {0: (1, 3), 1: (0,), 2: (1, 2, 3)}
    # NaN marks heads a pruned layer no longer has; half of 3 rounds up to 2 kept.
    ragged = torch.tensor([[0.9, 0.1, float("nan")], [0.3, 0.2, 0.1]])
    assert plan_pruning(ragged, keep_heads=0.5).heads == {0: (1,), 1: (2,)}
    assert plan_pruning(heads, drop_layers=[2]).as_dict() == {"heads": {}, "neurons": {}, "layers": [2]}


@pytest.mark.parametrize("call, message", [
    (lambda m: remove_heads(m, {0: [0, 1, 2, 3]}), "removing all 4 heads of layer 0"),
    (lambda m: remove_heads(m, {0: [4]}), "head 4 of layer 0 does not exist"),
    (lambda m: remove_heads(m, {3: [0]}), "layer 3 does not exist"),
    (lambda m: remove_neurons(m, {1: range(FFN)}), "removing all 64 neurons of layer 1"),
    (lambda m: remove_layers(m, [0, 1, 2]), "removing all 3 layers"),
    (lambda m: remove_layers(m, [-1]), "layer -1 does not exist"),
    (lambda m: plan_pruning(torch.ones(3, 4), keep_heads=0.1), "keeps none of the 4 heads of layer 0"),
    (lambda m: plan_pruning(neuron_scores=torch.ones(3, 64), keep_neurons=0), r"keep_neurons=0: .* \(0, 1\]"),
    (lambda m: plan_pruning(torch.ones(3, 4), keep_heads=0.5, scope="model"), "scope 'model'"),
    (lambda m: plan_pruning(torch.ones(3, 4), drop_layers=[3]), "layer 3 does not exist"),
])
def test_bad_requests_are_refused_before_any_change(call, message):
    model = tiny("bert")
    before = logits(model)
    with pytest.raises(PruneError, match=message):
        call(model)
    assert torch.equal(logits(model), before) and "edge_sdk_structure" not in model.config.to_dict()


def test_head_importance_is_zero_for_a_head_that_contributes_nothing():
    model = tiny("bert")
    names = names_for(model)
    layer = encoder_layers(model)[1]
    with torch.no_grad():  # head 2 of layer 1 outputs zeros: its value rows are zero
        layer.get_submodule(names.value).weight[2 * HEAD:3 * HEAD] = 0
        layer.get_submodule(names.value).bias[2 * HEAD:3 * HEAD] = 0
        layer.get_submodule(names.ffn_out).weight[:, 7] = 0  # neuron 7 of layer 1 feeds nothing forward
    raw = head_neuron_importance(model, [batch(1), batch(2)], normalize=False)
    assert raw.heads.shape == (LAYERS, HEADS) and raw.neurons.shape == (LAYERS, FFN)
    assert raw.heads[1, 2] == 0 and raw.neurons[1, 7] == 0
    assert (raw.heads[0] > 0).all() and (raw.neurons[0] > 0).sum() > FFN // 2
    norm = head_neuron_importance(model, [batch(1), batch(2)])
    np.testing.assert_allclose(norm.heads.norm(dim=1), 1.0, rtol=1e-6)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())  # state restored
    # After pruning, missing units are NaN and the plan skips them.
    scores = head_neuron_importance(remove_heads(model, {0: [0]}), [batch()])
    assert scores.heads[0].isnan().tolist() == [False, False, False, True]


def test_movement_scores_sum_minus_weight_times_gradient_per_head_and_neuron():
    model = tiny("bert")
    names = names_for(model)
    scores = movement_scores(model, [batch()])
    model.eval()
    model.zero_grad()
    model(**batch()).loss.backward()
    layer = encoder_layers(model)[2]

    def s(path):
        w = layer.get_submodule(path).weight
        return -(w * w.grad).detach()

    head1 = (sum(s(p)[HEAD:2 * HEAD].sum() for p in (names.query, names.key, names.value))
             + s(names.out)[:, HEAD:2 * HEAD].sum())
    assert math.isclose(float(scores.heads[2, 1]), float(head1), rel_tol=1e-4, abs_tol=1e-9)
    neuron5 = s(names.ffn_in)[5].sum() + s(names.ffn_out)[:, 5].sum()
    assert math.isclose(float(scores.neurons[2, 5]), float(neuron5), rel_tol=1e-4, abs_tol=1e-9)
    # With an optimizer the batches are training steps: the model moves and the scores accumulate.
    trained = tiny("bert")
    before = trained.classifier.weight.clone()
    moving = movement_scores(trained, [batch(1), batch(2), batch(3)],
                             optimizer=torch.optim.SGD(trained.parameters(), lr=0.1))
    assert not torch.equal(trained.classifier.weight, before) and moving.heads.shape == (LAYERS, HEADS)


@pytest.mark.parametrize("arch", ARCHS)
def test_pruned_model_exports_to_onnx_and_matches_pytorch(tmp_path, arch):
    from edge_sdk.export.onnx import export_onnx, onnx_logits, torch_logits

    model = tiny_bert() if arch == "bert" else tiny("mpnet")
    pruned = apply_plan(model, plan_pruning(*head_neuron_importance(model, [batch()]), keep_heads=0.5,
                                            keep_neurons=0.5, scope="global"))
    path = export_onnx(pruned, tmp_path / "pruned.onnx")
    feeds = [{"input_ids": batch()["input_ids"].numpy(), "attention_mask": batch()["attention_mask"].numpy(),
              "token_type_ids": np.zeros((4, 9), dtype=np.int64)}]
    got, want = onnx_logits(path, feeds), torch_logits(pruned, feeds)
    assert got.shape == (4, pruned.config.num_labels)
    assert float(np.abs(got - want).max()) < 1e-4
    assert path.stat().st_size < export_onnx(model, tmp_path / "full.onnx").stat().st_size


def test_cubic_schedule_follows_its_formula():
    s = CubicSchedule(final=0.8, updates=5, frequency=10, start=100, initial=0.2)
    assert s.end == 150
    for step in range(200):
        if step < 100:
            want = 0.0
        else:
            t = 100 + min((step - 100) // 10, 5) * 10  # the last update step at or before `step`
            want = 0.8 + (0.2 - 0.8) * (1 - (t - 100) / (5 * 10)) ** 3
        assert math.isclose(s(step), want, abs_tol=1e-12), step
    assert s(100) == pytest.approx(0.2) and s(150) == s(199) == pytest.approx(0.8)
    assert [t for t in range(200) if s.is_update(t)] == [100, 110, 120, 130, 140, 150]
    assert s(125) == s(120) < s(130)
    over = CubicSchedule.over(1000, 0.9, begin=0.1, end=0.7, frequency=20)
    assert (over.start, over.end, over.updates) == (100, 700, 30)
    with pytest.raises(PruneError, match="within"):
        CubicSchedule(final=1.0, updates=3)


def test_magnitude_masks_zero_the_smallest_weights_and_stay_pruned():
    model = tiny("bert")
    linears = add_masks(model)
    assert len(linears) == LAYERS * 6 and sparsity(model) == 0
    update_masks(model, 0.5)
    assert sparsity(model) == pytest.approx(0.5)
    q = linears["0.attention.self.query"]
    w = q.weight_orig.detach().abs()
    assert w[q.weight_mask == 0].max() <= w[q.weight_mask == 1].min()
    first = q.weight_mask.clone()
    with torch.no_grad():  # a pruned weight growing large does not come back under magnitude pruning
        q.weight_orig[first == 0] = 100.0
    update_masks(model, 0.75)
    assert ((q.weight_mask == 1) <= (first == 1)).all() and sparsity(model) == pytest.approx(0.75)
    masked_logits = logits(model)
    apply_masks(model)
    assert not hasattr(q, "weight_mask") and "weight_orig" not in dict(q.named_parameters())
    assert sparsity(model) == pytest.approx(0.75) and torch.equal(logits(model), masked_logits)


def test_movement_scores_accumulate_through_masks():
    model = tiny("bert").train()
    add_masks(model)
    scores = track_movement(model)
    key = "1.intermediate.dense"
    module = add_masks(model)[key]
    model(**batch()).loss.backward()
    expected = -(module.weight_orig.grad * module.weight_orig).detach()  # all-ones mask: dL/dW' = dL/dW
    torch.testing.assert_close(scores[key], expected)
    update_masks(model, 0.5, "movement")
    kept = scores[key][module.weight_mask == 1]
    assert kept.min() >= scores[key][module.weight_mask == 0].max()
    before = scores[key].clone()
    model.zero_grad()
    model(**batch(2)).loss.backward()
    masked = module.weight_mask == 0
    assert (scores[key][masked] != before[masked]).any()  # straight-through: masked weights keep moving
    assert (module.weight_orig.grad[masked] == 0).all()  # but get no update
    apply_masks(model)
    assert not hasattr(module, "weight_movement") and not module._forward_hooks


def test_pruning_callback_in_a_trainer_reaches_the_final_sparsity(tmp_path):
    from transformers import Trainer, TrainingArguments

    model = tiny("bert").train()
    rows = [{k: v[i] for k, v in batch(s).items()} for s in range(8) for i in range(4)]
    schedule = CubicSchedule(final=0.6, updates=3, frequency=2, start=1)
    seen = []

    class Spy(PruningCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            super().on_step_end(args, state, control, model=model, **kwargs)
            seen.append((state.global_step, sparsity(model)))

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=8, learning_rate=1e-3,
                             report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, logging_strategy="no")
    Trainer(model=model, args=args, train_dataset=rows, callbacks=[Spy(schedule, "movement")]).train()
    # Per matrix, round(s * size) weights are zeroed: within 1/2048 of s for these 32x32 and 32x64 ones.
    assert [t for t, _ in seen] == list(range(1, 9))
    assert [s for _, s in seen] == pytest.approx([schedule(t) for t in range(1, 9)], abs=1 / 2048)
    assert schedule(8) == 0.6 and sparsity(model) == pytest.approx(0.6, abs=1 / 2048)
    assert not any(hasattr(m, "weight_mask") for m in model.modules())  # applied at the end


def test_a_pruned_student_recovers_with_the_distillation_trainer(tmp_path, minilm_dir):
    from transformers import AutoTokenizer

    from edge_sdk.data import load_data
    from edge_sdk.distill.train import DistillConfig, prepare, train_student

    data = load_data(write_data(tmp_path / "data"))
    teacher_dir = tmp_path / "teacher"
    tiny_teacher(data.labels, layers=2).save_pretrained(teacher_dir)
    AutoTokenizer.from_pretrained(str(minilm_dir)).save_pretrained(teacher_dir)
    prepared = prepare(teacher_dir, data, 16, cache_dir=tmp_path / "cache")
    student = remove_neurons(remove_heads(prepared.teacher, {0: [1]}), {1: range(32)})
    trainer, accuracy = train_student(prepared, DistillConfig(epochs=1, max_length=16), tmp_path / "work",
                                      progress=False, student=student)
    assert trainer.model is student and 0 <= accuracy <= 1
    assert student.config.edge_sdk_structure["heads"][0] == [0]
    assert encoder_layers(student)[1].intermediate.dense.out_features == 32


@pytest.mark.parametrize("heads, shape", [({0: [1, 2]}, None), ({0: [1, 2], 1: [0, 3], 2: [2, 3]}, (2, 2 * HEAD)),
                                          ({}, (HEADS, HEADS * HEAD))])
def test_fusion_takes_the_pruned_head_count_or_is_skipped(tmp_path, heads, shape):
    # onnxruntime's transformer fusion reads one head count for the graph: a model pruned to the same
    # count in every layer fuses with it, one whose layers differ is not fused (it failed at run time)
    from edge_sdk.builder.formats import attention_shape
    from edge_sdk.export.onnx import export_onnx, onnx_logits, torch_logits
    from edge_sdk.optimize.fuse import fuse_transformer

    pruned = remove_heads(tiny("bert"), heads)
    assert attention_shape(pruned) == shape
    if shape is None:
        return
    fused = tmp_path / "fused.onnx"
    operators = fuse_transformer(export_onnx(pruned, tmp_path / "plain.onnx"), fused, num_heads=shape[0],
                                 hidden_size=shape[1])
    assert operators.get("Attention") == LAYERS
    feeds = [{"input_ids": batch()["input_ids"].numpy(), "attention_mask": batch()["attention_mask"].numpy(),
              "token_type_ids": np.zeros((4, 9), dtype=np.int64)}]
    assert float(np.abs(onnx_logits(fused, feeds) - torch_logits(pruned, feeds)).max()) < 1e-4
