"""Target profiles and recipes are data: every file parses, says why, and bad names get clear errors."""

from __future__ import annotations

import re

import pytest

from edge_sdk.errors import ConfigError
from edge_sdk.profiles import available_targets, load_target
from edge_sdk.recipes import available_recipes, load_recipe

REQUIRED_TARGETS = {"x86-avx2", "x86-avx512-vnni", "arm64", "gpu-tensorrt", "web-wasm"}


def test_every_shipped_target_parses_and_says_why():
    assert REQUIRED_TARGETS <= set(available_targets())
    for name in available_targets():
        profile = load_target(name)
        assert profile.name == name and len(profile.why) > 20 and profile.models
        assert profile.opset >= 13 and profile.max_accuracy_drop > 0
        assert len({m.file for m in profile.models}) == len(profile.models)


def test_target_reasoning_is_in_the_data():
    assert load_target("x86-avx2").models[0].quantization.reduce_range is True
    assert load_target("x86-avx512-vnni").models[0].quantization.reduce_range is False
    gpu = load_target("gpu-tensorrt")
    assert [m.precision for m in gpu.models] == ["fp16", "int8"]
    qdq = gpu.models[1].quantization
    assert qdq.method == "static" and qdq.activation_type == "int8" and qdq.symmetric_activations
    assert "TensorrtExecutionProvider" in gpu.providers


def test_a_target_is_a_file(tmp_path):
    text = (tmp_path / "mine.toml")
    text.write_text('name = "mine"\nwhy = "a profile of my own, just to show a file is enough"\n'
                    '[[models]]\nfile = "m.onnx"\nformat = "onnx"\nprecision = "fp32"\n')
    assert load_target(str(text)).models[0].quantization.method == "none"


def test_bad_profiles_and_names(tmp_path):
    with pytest.raises(ConfigError, match="unknown target 'nope'.*arm64"):
        load_target("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nwhy = "x"\n[[models]]\nfile = "m"\nformat = "caffe"\nprecision = "fp32"\n')
    with pytest.raises(ConfigError, match="format 'caffe'"):
        load_target(str(bad))
    bad.write_text('name = "bad"\nwhy = "x"\n[[models]]\nfile = "m"\nformat = "onnx"\nprecision = "int8"\n'
                   '[models.quantization]\nmethod = "magic"\n')
    with pytest.raises(ConfigError, match="method must be one of .*, got 'magic'"):
        load_target(str(bad))


def test_recipes():
    assert {"default", "distilled", "static-minmax", "static-entropy", "static-percentile"} <= set(available_recipes())
    assert load_recipe("default").steps == ()
    (step,) = load_recipe("distilled").steps
    assert step.name == "distill" and step.config.layers == (1, 3, 5)
    assert load_recipe("static-entropy").onnx_quantization.calibration == "entropy"
    with pytest.raises(ConfigError, match="unknown recipe"):
        load_recipe("nope")
    recipe = load_recipe("static-percentile")
    overridden = load_target("arm64").with_quantization("onnx", recipe.onnx_quantization)
    onnx_model, tflite_model = overridden.models
    assert onnx_model.quantization == recipe.onnx_quantization  # ONNX Runtime settings reach the ONNX file only
    assert tflite_model.quantization == load_target("arm64").models[1].quantization


def test_recipes_round_trip_through_toml(tmp_path):
    from edge_sdk.distill import DistillConfig
    from edge_sdk.recipes import Recipe, Step, dump_recipe, load_recipe

    for name in available_recipes():
        recipe = load_recipe(name)
        (tmp_path / f"{name}.toml").write_text(dump_recipe(recipe))
        assert load_recipe(str(tmp_path / f"{name}.toml")) == recipe
    odd = Recipe(name='quote " and \\ backslash', why="ünïcode",
                 steps=(Step("distill", DistillConfig(layers=(0, 1), alpha=0.25, augment=2)),))
    (tmp_path / "odd.toml").write_text(dump_recipe(odd))
    assert load_recipe(str(tmp_path / "odd.toml")) == odd


@pytest.mark.parametrize("text, message", [
    # a typo in a key: file, table and key named, with the closest known key
    ('[[steps]]\nstep = "distill"\nalhpa = 0.5\n',
     r"\[\[steps\]\] 1 \(distill\): unknown key 'alhpa' \(did you mean 'alpha'\?\)"),
    ('[onnx_quantization]\nmethod = "static"\ncalibraton = "entropy"\n',
     r"\[onnx_quantization\]: unknown key 'calibraton' \(did you mean 'calibration'\?\)"),
    # wrong types and ranges
    ('[teacher]\nepochs = "four"\n', r"\[teacher\]: epochs must be an integer, got 'four'"),
    ('[teacher]\nlearning_rate = true\n', r"learning_rate must be a number, got True"),
    ('[[steps]]\nstep = "distill"\nlayers = [1, "x"]\n', r"layers\[1\] must be an integer"),
    ('[[steps]]\nstep = "distill"\nalpha = 1.5\n', r"alpha must lie in \[0, 1\], got 1.5"),
    ('[onnx_quantization]\nmethod = "magic"\n', r"method must be one of 'none', 'dynamic', 'static', 'fp16'"),
    ('[[steps]]\nstep = "prune-everything"\n', r"unknown step 'prune-everything'; known steps: distill"),
    ('[[steps]]\nalpha = 0.1\n', r"needs step = one of distill"),
    ('max_accuracy_drop = -1\n', r"max_accuracy_drop must be >= 0"),
    # a setting of the other format: LiteRT has no per-channel switch
    ('[tflite_quantization]\nmethod = "static"\nper_channel = true\n',
     r"\[tflite_quantization\]: unknown key 'per_channel'"),
    ('steps = 3\n', r"steps must be an array of tables"),
])
def test_recipe_errors_name_the_file_and_key(tmp_path, text, message):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('name = "mine"\nwhy = "test"\n' + text)
    with pytest.raises(ConfigError, match=rf"recipe {re.escape(str(recipe))}.*{message}"):
        load_recipe(str(recipe))


def test_profile_errors_name_the_file_and_key(tmp_path):
    base = 'name = "p"\nwhy = "x"\n[[models]]\nfile = "m.tflite"\nformat = "tflite"\nprecision = "int8"\n'
    profile = tmp_path / "p.toml"
    # per_channel is an ONNX Runtime setting: a TFLite model's quantization refuses it
    profile.write_text(base + '[models.quantization]\nmethod = "dynamic"\nper_channel = true\n')
    with pytest.raises(ConfigError, match=r"p.toml \[\[models\]\] 1 \(m.tflite\) \[quantization\], tflite models take "
                                          r"TFLiteQuantization: unknown key 'per_channel'"):
        load_target(str(profile))
    profile.write_text(base.replace('precision = "int8"', 'precision = "int2"'))
    with pytest.raises(ConfigError, match=r"precision must be one of 'fp32', 'fp16', 'int8', 'int4', got 'int2'"):
        load_target(str(profile))
    profile.write_text(base + "[budgets]\nmax_accuracy_drop = -2\n")
    with pytest.raises(ConfigError, match=r"max_accuracy_drop must be >= 0"):
        load_target(str(profile))
    profile.write_text('name = "p"\nwhy = "x"\n')
    with pytest.raises(ConfigError, match=r"needs one or more \[\[models\]\] tables"):
        load_target(str(profile))


def test_legacy_distill_table_still_loads(tmp_path):
    """Recipes written by `edge-sdk distill` before [[steps]] held one [distill] table."""
    recipe = tmp_path / "old.toml"
    recipe.write_text('name = "old"\nwhy = "x"\n[distill]\nlayers = [1]\nalpha = 0.5\n')
    (step,) = load_recipe(str(recipe)).steps
    assert step.name == "distill" and step.config.layers == (1,) and step.config.alpha == 0.5
