"""Distillation: the loss by hand, student layer copying, the Trainer, the Optuna search and its
resume, and the `distill` command, all on tiny random BERTs (hidden 32) and a few dozen texts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

TOPICS = {
    "alarm": ["wake me up at {n} am", "set an alarm for {n} o'clock", "alarm at {n} please",
              "ring me at {n} tomorrow"],
    "balance": ["what's my balance on account {n}", "how much money is in account {n}",
                "show balance of card {n}", "balance check for {n}"],
    "transfer": ["send {n} dollars to mom", "transfer {n} euros to savings", "move {n} to checking",
                 "wire {n} pounds to Ana"],
    "weather": ["will it rain in {n} hours", "weather forecast for day {n}", "is it sunny at {n}",
                "temperature in {n} days"],
}


def write_data(folder: Path, per_label: int = 12, test_per_label: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("train", per_label, 0), ("test", test_per_label, 100)):
        rows = [{"text": templates[i % len(templates)].format(n=offset + i), "label": label}
                for label, templates in TOPICS.items() for i in range(count)]
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def tiny_teacher(labels, layers: int = 4, seed: int = 0):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and spinning ones slow down on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def distill_data_dir(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("distill-data"))


@pytest.fixture(scope="session")
def distill_data(distill_data_dir):
    from edge_sdk.data import load_data

    return load_data(distill_data_dir)


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory, minilm_dir, distill_data) -> Path:
    """A saved 4-layer tiny teacher with the data's labels and the real MiniLM tokenizer."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("teacher") / "t"
    tiny_teacher(distill_data.labels).save_pretrained(out)
    AutoTokenizer.from_pretrained(str(minilm_dir)).save_pretrained(out)
    return out


# ---- the loss ------------------------------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


STUDENT = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, -0.3, 1.5], [-2.0, 3.0, 0.0, 1.0]])
TEACHER = np.array([[3.0, -2.0, 1.0, 0.5], [0.0, 0.0, 0.0, 4.0], [-1.0, 5.0, -1.0, 0.0]])
LABELS_Y = np.array([0, 3, 2])


def hand_loss(alpha, t):
    ce = -np.log(_softmax(STUDENT)[np.arange(3), LABELS_Y]).mean()
    ps, pt = _softmax(STUDENT / t), _softmax(TEACHER / t)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(-1).mean()  # KL(teacher || student), summed over classes
    return alpha * ce + (1 - alpha) * t * t * kl


@pytest.mark.parametrize("alpha,t", [(0.5, 2.0), (0.3, 4.5), (1.0, 3.0), (0.0, 1.0), (0.0, 7.0)])
def test_loss_matches_hand_computation(alpha, t):
    import torch

    from edge_sdk.distill import distillation_loss

    got = distillation_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS_Y), alpha, t)
    assert got.item() == pytest.approx(hand_loss(alpha, t), rel=1e-9, abs=1e-12)


def test_loss_soft_term_vanishes_when_student_equals_teacher_and_keeps_gradient_scale():
    import torch

    from edge_sdk.distill import distillation_loss

    z = torch.tensor(TEACHER)
    assert distillation_loss(z, z, torch.tensor(LABELS_Y), 0.0, 5.0).item() == pytest.approx(0.0, abs=1e-12)
    # T^2 keeps d(loss)/dz_s = (p_s - p_t) / T * T^2 / batch = T (p_s - p_t) / batch.
    s = torch.tensor(STUDENT, requires_grad=True)
    distillation_loss(s, z, torch.tensor(LABELS_Y), 0.0, 4.0).backward()
    expected = 4.0 * (_softmax(STUDENT / 4.0) - _softmax(TEACHER / 4.0)) / 3
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_loss_rejects_bad_alpha_and_temperature():
    import torch

    from edge_sdk.distill import distillation_loss

    args = torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS_Y)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(*args, 1.5, 2.0)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(*args, 0.5, 0.0)


# ---- the student -----------------------------------------------------------------------------------

@pytest.mark.parametrize("layers", [(1, 3), (0, 2), (2,), (0, 1, 2, 3)])
def test_student_copies_the_chosen_teacher_layers_exactly(layers):
    import torch

    from edge_sdk.distill import make_student

    teacher = tiny_teacher(("a", "b", "c"), layers=4, seed=1)
    student = make_student(teacher, layers)
    assert student.config.num_hidden_layers == len(layers) and teacher.config.num_hidden_layers == 4
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for i, j in enumerate(layers):
        prefix_s, prefix_t = f"bert.encoder.layer.{i}.", f"bert.encoder.layer.{j}."
        keys = [k for k in s_state if k.startswith(prefix_s)]
        assert keys
        for k in keys:
            assert torch.equal(s_state[k], t_state[prefix_t + k[len(prefix_s):]]), k
    for k in s_state:
        if ".encoder.layer." not in k:
            assert torch.equal(s_state[k], t_state[k]), k  # embeddings, pooler, classifier
    assert student.config.id2label == teacher.config.id2label
    # Same modules, same order: the student computes what the teacher's chosen layers compute.
    ids = torch.tensor([[101, 2054, 2003, 2026, 5703, 102]])
    with torch.no_grad():
        h = teacher.bert.embeddings(input_ids=ids)
        for j in layers:
            h = teacher.bert.encoder.layer[j](h)[0] if isinstance(teacher.bert.encoder.layer[j](h), tuple) \
                else teacher.bert.encoder.layer[j](h)
        expected = teacher.classifier(teacher.bert.pooler(h))
        torch.testing.assert_close(student.eval()(input_ids=ids).logits, expected, rtol=1e-5, atol=1e-6)


def test_student_defaults_to_every_other_layer_and_from_a_smaller_config():
    from transformers import BertConfig

    from edge_sdk.distill import make_student, student_from_config
    from edge_sdk.distill.student import every_other_layer, spread_layers

    assert every_other_layer(6) == (1, 3, 5) and every_other_layer(4) == (1, 3) and every_other_layer(5) == (0, 2, 4)
    assert spread_layers(6, 3) == (1, 3, 5) and spread_layers(6, 2) == (2, 5) and spread_layers(4, 4) == (0, 1, 2, 3)
    assert spread_layers(6, 1) == (5,)
    teacher = tiny_teacher(("a", "b"), layers=4)
    assert make_student(teacher).config.num_hidden_layers == 2
    small = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)
    student = student_from_config(small, teacher)
    assert student.config.num_labels == 2 and student.config.id2label == {0: "a", 1: "b"}
    assert student.config.hidden_size == 16


@pytest.mark.parametrize("layers,message", [((0, 4), "layer 4 does not exist: the teacher has layers 0..3"),
                                            ((-1,), "layer -1 does not exist"),
                                            ((1, 1), "layer 1 is listed twice"),
                                            ((), "at least one layer")])
def test_bad_layer_lists_are_refused(layers, message):
    from edge_sdk.distill import DistillError, make_student

    with pytest.raises(DistillError, match=message):
        make_student(tiny_teacher(("a", "b"), layers=4), layers)


def test_parse_layers():
    from edge_sdk.distill import DistillError
    from edge_sdk.distill.student import parse_layers

    assert parse_layers("0, 2,4") == (0, 2, 4)
    for bad in ("", "0,x", "1.5"):
        with pytest.raises(DistillError):
            parse_layers(bad)


def test_hidden_state_loss_matches_hand_computation_and_skips_padding():
    import torch

    from edge_sdk.distill.loss import hidden_state_loss
    from edge_sdk.distill.student import layer_map

    assert layer_map(3, 6) == (2, 4, 6) and layer_map(2, 4) == (2, 4) and layer_map(1, 6) == (6,)
    assert layer_map(2, 3) == (2, 3) and layer_map(4, 4) == (1, 2, 3, 4)
    g = torch.Generator().manual_seed(0)
    teacher = [torch.randn(2, 3, 4, generator=g) for _ in range(5)]  # embeddings + 4 layers
    student = [torch.randn(2, 3, 4, generator=g) for _ in range(3)]  # embeddings + 2 layers
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    got = hidden_state_loss(student, teacher, (2, 4), mask)
    keep = mask.bool()
    want = np.mean([((student[j + 1][keep] - teacher[t][keep]) ** 2).mean().item() for j, t in enumerate((2, 4))])
    assert got.item() == pytest.approx(want, rel=1e-6)
    # What sits under padding does not count.
    student[1][1, 2] += 100.0
    assert hidden_state_loss(student, teacher, (2, 4), mask).item() == pytest.approx(want, rel=1e-6)
    assert hidden_state_loss(teacher[:1] + [teacher[2], teacher[4]], teacher, (2, 4), mask).item() == 0.0


# ---- training ----------------------------------------------------------------------------------------

def test_collator_stacks_teacher_logits_beside_padded_tokens(teacher_dir, distill_data):
    from transformers import AutoTokenizer

    from edge_sdk.distill.trainer import DistillationCollator, with_teacher_logits
    from edge_sdk.train.teacher import tokenized

    tok = AutoTokenizer.from_pretrained(str(teacher_dir))
    logits = np.arange(len(distill_data.train) * 4, dtype=np.float32).reshape(-1, 4)
    ds = with_teacher_logits(tokenized(tok, distill_data.train, 32), logits)
    batch = DistillationCollator(tok)([ds[i] for i in range(5)])
    assert batch["teacher_logits"].shape == (5, 4) and batch["labels"].shape == (5,)
    np.testing.assert_array_equal(batch["teacher_logits"].numpy(), logits[:5])
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    with pytest.raises(ValueError, match="teacher logit rows"):
        with_teacher_logits(tokenized(tok, distill_data.train, 32), logits[:3])


def test_distill_writes_a_loadable_student(teacher_dir, distill_data, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from edge_sdk.distill import DistillConfig, distill

    out = distill(teacher_dir, distill_data, tmp_path / "student",
                  DistillConfig(layers=(1, 3), epochs=1, alpha=0.5, temperature=2.0, max_length=32), progress=False)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_hidden_layers == 2 and model.config.id2label[0] == distill_data.labels[0]
    AutoTokenizer.from_pretrained(str(out))
    record = json.loads((out / "distillation.json").read_text())
    assert record["config"]["layers"] == [1, 3] and record["world_size"] == 1
    assert 0.0 <= record["validation_accuracy"] <= 1.0 and 0.0 <= record["test_accuracy"] <= 1.0
    assert not (tmp_path / "student.work").exists()  # logits cache and trainer output cleaned up


def test_augmented_texts_are_deterministic_new_and_one_edit_away():
    from edge_sdk.distill.augment import augment_texts

    texts = ["what is my balance today", "wake me up at six", "send ten dollars to mom", "hi"]
    once, again = augment_texts(texts, 3, seed=1), augment_texts(texts, 3, seed=1)
    assert once == again and once != augment_texts(texts, 3, seed=2)
    assert len(once) == len(set(once)) and not set(once) & set(texts)
    assert 0 < len(once) <= 3 * len(texts)
    vocabulary = {w for t in texts for w in t.split()}
    for text in once:
        assert set(text.split()) <= vocabulary  # drop/swap/replace/splice only reuse training words
    assert augment_texts(texts, 0) == []
    with pytest.raises(ValueError, match="at least 0"):
        augment_texts(texts, -1)


def test_augmentation_adds_teacher_labelled_rows(teacher_dir, distill_data, tmp_path):
    from edge_sdk.distill.augment import augment_texts
    from edge_sdk.distill.logits import teacher_logits_for
    from edge_sdk.distill.train import prepare

    plain = prepare(teacher_dir, distill_data, 32, cache_dir=tmp_path / "cache")
    augmented = prepare(teacher_dir, distill_data, 32, cache_dir=tmp_path / "cache", augment=2)
    texts = augment_texts(distill_data.train.texts, 2)
    assert plain.augmented == 0 and augmented.augmented == len(texts) > len(distill_data.train)
    assert len(augmented.train) == len(plain.train) + len(texts)
    logits = teacher_logits_for(teacher_dir, texts, tmp_path / "cache", 32)  # from the cache now
    assert len(list((tmp_path / "cache").glob("teacher-logits-texts-*.npz"))) == 1
    rows = augmented.train.select(range(len(plain.train), len(augmented.train)))
    np.testing.assert_allclose(np.asarray(rows["teacher_logits"]), logits, rtol=1e-6)
    assert list(rows["label"]) == logits.argmax(-1).tolist()  # the teacher's argmax is their label


def test_teacher_passes_show_a_progress_bar_in_a_terminal(teacher_dir, distill_data, monkeypatch):
    import io

    from edge_sdk.distill.logits import load_teacher, predict_logits

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    model, tokenizer = load_teacher(teacher_dir)
    texts = list(distill_data.train.texts)
    for stream, description in ((Terminal(), "teacher logits, train"), (io.StringIO(), "teacher logits, train"),
                                (Terminal(), None)):
        monkeypatch.setattr("sys.stderr", stream)
        logits = predict_logits(model, tokenizer, texts, 32, batch_size=8, description=description)
        assert logits.shape == (len(texts), len(distill_data.labels))
        shown = "teacher logits, train" in stream.getvalue()
        assert shown == (description is not None and stream.isatty()), stream.getvalue()[:200]


def test_hidden_state_distillation_trains_and_is_recorded(teacher_dir, distill_data, tmp_path):
    from edge_sdk.distill import DistillConfig, distill
    from edge_sdk.errors import ConfigError

    out = distill(teacher_dir, distill_data, tmp_path / "student",
                  DistillConfig(layers=(0, 2), epochs=1, hidden_weight=1.0, max_length=32), progress=False)
    record = json.loads((out / "distillation.json").read_text())
    assert record["config"]["hidden_weight"] == 1.0 and 0.0 <= record["validation_accuracy"] <= 1.0
    with pytest.raises(ConfigError, match="hidden-state loss needs a student made of teacher layers"):
        DistillConfig(student_config=str(teacher_dir), epochs=1, hidden_weight=1.0, max_length=32)


def test_teacher_without_matching_head_is_refused(teacher_dir, tmp_path):
    from edge_sdk.data import load_data
    from edge_sdk.distill import DistillError
    from edge_sdk.distill.train import check_teacher

    other = tmp_path / "d"
    other.mkdir()
    (other / "train.jsonl").write_text("".join(json.dumps({"text": f"x {i}", "label": f"l{i % 3}"}) + "\n"
                                               for i in range(30)))
    with pytest.raises(DistillError, match="classifies 4 labels, not the data's 3"):
        check_teacher(teacher_dir, load_data(other))
    with pytest.raises(DistillError, match="teacher not found"):
        check_teacher(tmp_path / "nothing", load_data(other))


# ---- the search -----------------------------------------------------------------------------------------

TINY_SPACE = dict(epochs=(1, 2))


def test_search_on_a_tiny_model(teacher_dir, distill_data, tmp_path):
    import optuna

    from edge_sdk.distill import DistillConfig, SearchSpace, search

    seen = []
    result = search(teacher_dir, distill_data, tmp_path, trials=3, base=DistillConfig(layers=(0, 2), max_length=32),
                    space=SearchSpace(**TINY_SPACE), on_trial=lambda t: seen.append(t.number))
    study = optuna.load_study(study_name="distill", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.number for t in study.trials] == [0, 1, 2] == seen == list(result.trials_here)
    from edge_sdk.distill.tune import open_study

    assert isinstance(open_study(f"sqlite:///{tmp_path / 'study.db'}", "distill").pruner, optuna.pruners.MedianPruner)
    # The first trial is the base config clipped into the space (epochs 5 -> 2), the rest are sampled.
    base = DistillConfig()
    assert study.trials[0].params == {"alpha": base.alpha, "temperature": base.temperature,
                                      "learning_rate": base.learning_rate, "epochs": 2}
    assert len({t.params["alpha"] for t in study.trials}) == 3
    for t in study.trials:
        assert set(t.params) == {"alpha", "temperature", "learning_rate", "epochs"}
        assert len(t.intermediate_values) >= 1  # validation accuracy reported per epoch (pruning input)
        assert t.user_attrs["layers"] == [0, 2]
    assert result.best_params["layers"] == [0, 2] and 0 <= result.best_value <= 1
    saved = json.loads((tmp_path / "best_params.json").read_text())
    assert saved["best_params"] == result.best_params and saved["trials"]["COMPLETE"] >= 1
    assert set(saved["teacher_accuracy"]) == {"validation", "test"}
    assert (tmp_path / "student" / "config.json").is_file() and result.student_test_accuracy is not None
    kept = json.loads((tmp_path / "student" / "distillation.json").read_text())
    assert kept["validation_accuracy"] == max(t.value for t in study.trials if t.state.name == "COMPLETE")
    assert not (tmp_path / "work").exists()


def test_search_prunes_trials_below_the_median(teacher_dir, distill_data, tmp_path, monkeypatch):
    """A MedianPruner stops a trial below earlier trials' median, but not before PRUNE_FROM_EPOCH."""
    import optuna

    from edge_sdk.distill import DistillConfig, SearchSpace, search, tune

    values = iter([0.9, 0.8, 0.1])
    original = tune.train_student

    def scripted(prepared, config, work, callbacks=(), progress=True):
        value = next(values)
        trainer, _ = original(prepared, config, work, callbacks=(), progress=progress)
        for epoch in range(1, tune.PRUNE_FROM_EPOCH + 1):  # replay per-epoch reports with a scripted accuracy
            for cb in callbacks:
                cb.on_evaluate(trainer.args, type("S", (), {"epoch": float(epoch)})(), None,
                               metrics={"eval_accuracy": value})
        return trainer, value

    monkeypatch.setattr(tune, "train_student", scripted)
    result = search(teacher_dir, distill_data, tmp_path, trials=3, base=DistillConfig(layers=(0,), max_length=32),
                    space=SearchSpace(epochs=(1, 1)))
    states = {r["number"]: r["state"] for r in result.rows}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED"}
    assert result.best_trial == 0 and result.student_trial == 0
    study = optuna.load_study(study_name="distill", storage=f"sqlite:///{tmp_path / 'study.db'}")
    # The low trial was below the median from epoch 1 on and was stopped only at PRUNE_FROM_EPOCH.
    assert study.trials[2].last_step == tune.PRUNE_FROM_EPOCH


def test_interrupted_search_resumes_to_the_requested_count(teacher_dir, distill_data, tmp_path, monkeypatch):
    import optuna

    from edge_sdk.distill import DistillConfig, SearchSpace, search, tune

    base = DistillConfig(layers=(0, 2), max_length=32)
    original, calls = tune.train_student, []

    def interrupted_in_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of trial 1
        return original(*args, **kwargs)

    monkeypatch.setattr(tune, "train_student", interrupted_in_second_trial)
    with pytest.raises(KeyboardInterrupt):
        search(teacher_dir, distill_data, tmp_path, trials=3, base=base, space=SearchSpace(**TINY_SPACE))
    monkeypatch.setattr(tune, "train_student", original)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert [t.state.name for t in optuna.load_study(study_name="distill", storage=storage).trials] == [
        "COMPLETE", "FAIL"]

    result = search(teacher_dir, distill_data, tmp_path, trials=3, base=base, space=SearchSpace(**TINY_SPACE))
    study = optuna.load_study(study_name="distill", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert result.trials_here == (2, 3)
    # Already complete: a rerun trains nothing and reports the same best.
    again = search(teacher_dir, distill_data, tmp_path, trials=3, base=base, space=SearchSpace(**TINY_SPACE))
    assert again.trials_here == () and again.best_trial == result.best_trial
    # Asking for more grows the same study.
    more = search(teacher_dir, distill_data, tmp_path, trials=4, base=base, space=SearchSpace(**TINY_SPACE))
    assert more.trials_here == (4,)


def test_search_over_student_depth(teacher_dir, distill_data, tmp_path):
    from edge_sdk.distill import DistillConfig, SearchSpace, search

    result = search(teacher_dir, distill_data, tmp_path, trials=2, base=DistillConfig(max_length=32),
                    space=SearchSpace(epochs=(1, 1), depths=(1, 2)))
    assert {tuple(r["layers"]) for r in result.rows} <= {(3,), (1, 3)}  # spread over 4, ending at the top
    assert json.loads((tmp_path / "student" / "config.json").read_text())["num_hidden_layers"] in (1, 2)


# ---- the command -----------------------------------------------------------------------------------------

def run_cli(*args):
    from click.testing import CliRunner

    from edge_sdk.distill.command import distill

    return CliRunner().invoke(distill, [str(a) for a in args])


def test_a_pretrained_students_search_writes_a_recipe_that_keeps_its_template(tmp_path):
    from edge_sdk.distill.config import DistillConfig
    from edge_sdk.distill.tune import SearchResult, write_recipe
    from edge_sdk.recipes import load_recipe

    best = {"alpha": 0.6, "temperature": 8.2, "learning_rate": 1.1e-4, "epochs": 7, "layers": None}
    result = SearchResult("mpnet-minilm", "sqlite:///x", 6, best, 0.9555, {"validation": 0.97, "test": 0.90},
                          None, None, None, ())
    path = write_recipe(tmp_path / "recipe.toml", result, DistillConfig(student="org/student", max_length=32))
    recipe, template = load_recipe(str(path)), load_recipe("distilled-base")
    assert [s.name for s in recipe.steps] == [s.name for s in template.steps] == ["distill", "trim"]
    step = recipe.steps[0].config
    assert (step.student, step.alpha, step.epochs, step.layers, step.max_length) == ("org/student", 0.6, 7, None, 32)
    assert recipe.steps[1] == template.steps[1] and recipe.teacher == template.teacher
    assert recipe.max_accuracy_drop == template.max_accuracy_drop  # not the 3-layer recipe's 2.0
    assert recipe.why.startswith("the pretrained org/student distilled") and "trial 6 " in recipe.why


def test_cli_end_to_end(teacher_dir, distill_data_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli("--teacher", teacher_dir, "--data", distill_data_dir, "--layers", "0,2", "--trials", 2,
                     "--epochs", "1", "--alpha", "0.2:0.4", "--temperature", "3:3", "--lr", "1e-4:2e-4",
                     "--max-length", 32, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Optuna study: 2 trials" in result.output and "best: trial" in result.output
    assert "trial 0: complete" in result.output and "best_params.json" in result.output
    saved = json.loads((out / "best_params.json").read_text())
    assert set(saved["best_params"]) == {"alpha", "temperature", "learning_rate", "epochs", "layers"}
    assert saved["best_params"]["layers"] == [0, 2] and saved["best_params"]["epochs"] == 1
    assert 0.2 <= saved["best_params"]["alpha"] <= 0.4 and saved["best_params"]["temperature"] == 3.0
    assert 1e-4 <= saved["best_params"]["learning_rate"] <= 2e-4
    assert (out / "student" / "model.safetensors").is_file() and (out / "study.db").is_file()
    # The best parameters as a build recipe: what `edge-sdk build --recipe out/recipe.toml` reads.
    from edge_sdk.recipes import load_recipe

    recipe = load_recipe(str(out / "recipe.toml"))
    assert recipe.name == "distilled-distill" and f"trial {saved['best_trial']} " in recipe.why
    (step,) = recipe.steps
    config = step.config.as_dict()
    assert step.name == "distill" and {k: config[k] for k in saved["best_params"]} == saved["best_params"]
    assert step.config.max_length == 32 and recipe.teacher == load_recipe("distilled").teacher
    assert step.config.layers == (0, 2)
    # The best parameters train one student again without a search (what `accelerate launch` runs).
    again = run_cli("--teacher", teacher_dir, "--data", distill_data_dir, "--params", out / "best_params.json",
                    "--max-length", 32, "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert "student (1 process(es))" in again.output and (tmp_path / "again" / "student" / "config.json").is_file()
    # the saved student's bias was corrected on the validation texts (distill/bias.py)
    correction = json.loads((tmp_path / "again" / "student" / "distillation.json").read_text())["bias_correction"]
    assert correction["texts"] > 0 and 0 <= correction["validation_accuracy_before"] <= 1
    assert 0 <= correction["test_accuracy_before"] <= 1
    # --augment, --hidden-weight and --no-bias-correction reach the student's recorded config.
    augmented = run_cli("--teacher", teacher_dir, "--data", distill_data_dir, "--params", out / "best_params.json",
                        "--max-length", 32, "--augment", 1, "--hidden-weight", 0.5, "--no-bias-correction",
                        "--out", tmp_path / "augmented")
    assert augmented.exit_code == 0, augmented.output
    record = json.loads((tmp_path / "augmented" / "student" / "distillation.json").read_text())
    assert record["config"]["augment"] == 1 and record["config"]["hidden_weight"] == 0.5
    assert record["config"]["bias_correction"] is False and "bias_correction" not in record


def test_cli_is_registered_on_edge_sdk():
    from edge_sdk.cli import cli

    assert "distill" in cli.commands


@pytest.mark.parametrize("args,message", [
    (["--layers", "0,9"], "layer 9 does not exist: the teacher has layers 0..3"),
    (["--layers", "1,1"], "layer 1 is listed twice"),
    (["--layers", ""], "at least one layer"),
    (["--layers", "0,two"], "comma-separated integers"),
    (["--depths", "7"], "a student of 7 layers cannot come from a teacher of 4"),
    (["--layers", "0", "--depths", "1"], "give one of --layers"),
    (["--trials", "0"], "need at least 1 trial"),
    (["--epochs", "3-1"], "MIN <= MAX"),
    (["--alpha", "0:1.5"], "0.0 <= MIN <= MAX <= 1.0"),
    (["--lr", "fast"], "MIN:MAX"),
    (["--temperature", "0:2"], "MIN <= MAX"),
    (["--augment", "-1"], "-1 is not in the range x>=0"),
    (["--hidden-weight", "-0.5"], "-0.5 is not in the range x>=0"),
])
def test_cli_bad_arguments(teacher_dir, distill_data_dir, tmp_path, args, message):
    result = run_cli("--teacher", teacher_dir, "--data", distill_data_dir, "--out", tmp_path, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "study.db").exists()


def test_cli_missing_teacher_and_data(teacher_dir, distill_data_dir, tmp_path):
    result = run_cli("--teacher", tmp_path / "nope", "--data", distill_data_dir)
    assert result.exit_code == 2 and "no fine-tuned model at" in result.output
    result = run_cli("--teacher", teacher_dir, "--data", tmp_path / "missing.csv")
    assert result.exit_code == 1 and "Error: data not found" in result.output


@pytest.mark.parametrize("url,message", [
    ("postgresql://nobody@127.0.0.1:9/none", "cannot reach study storage postgresql://nobody@127.0.0.1:9/none"),
    ("postgresql://u:secret@127.0.0.1:9/none", "postgresql://u:***@127.0.0.1:9/none"),
    ("not a url", "not a database URL"),
])
def test_unreachable_or_bad_storage_is_one_line(teacher_dir, distill_data_dir, tmp_path, url, message):
    """Through the real entry point: `Error: ...` on one line, exit 1, the password masked."""
    proc = subprocess.run([sys.executable, "-m", "edge_sdk.distill", "--teacher", str(teacher_dir), "--data",
                           str(distill_data_dir), "--storage", url, "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], proc.stderr
    assert "secret" not in proc.stderr
