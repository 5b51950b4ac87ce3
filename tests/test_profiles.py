"""Target profiles and recipes are data: every file parses, says why, and bad names get clear errors."""

from __future__ import annotations

import pytest

from edge_sdk.profiles import ProfileError, available_targets, load_target
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
    with pytest.raises(ProfileError, match="unknown target 'nope'.*arm64"):
        load_target("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nwhy = "x"\n[[models]]\nfile = "m"\nformat = "caffe"\nprecision = "fp32"\n')
    with pytest.raises(ProfileError, match="format 'caffe'"):
        load_target(str(bad))
    bad.write_text('name = "bad"\nwhy = "x"\n[[models]]\nfile = "m"\nformat = "onnx"\nprecision = "int8"\n'
                   '[models.quantization]\nmethod = "magic"\n')
    with pytest.raises(ProfileError, match="method 'magic'"):
        load_target(str(bad))


def test_recipes():
    assert {"default", "distilled", "static-minmax", "static-entropy", "static-percentile"} <= set(available_recipes())
    assert load_recipe("default").distill is None
    assert load_recipe("distilled").distill["layers"] == [1, 3, 5]
    assert load_recipe("static-entropy").quantization["calibration"] == "entropy"
    with pytest.raises(ProfileError, match="unknown recipe"):
        load_recipe("nope")
    overridden = load_target("arm64").with_quantization(**load_recipe("static-percentile").quantization)
    assert all(m.quantization.method == "static" for m in overridden.models if m.precision == "int8")


def test_recipes_round_trip_through_toml(tmp_path):
    from edge_sdk.recipes import Recipe, dump_recipe, load_recipe

    for name in available_recipes():
        recipe = load_recipe(name)
        (tmp_path / f"{name}.toml").write_text(dump_recipe(recipe))
        assert load_recipe(str(tmp_path / f"{name}.toml")) == recipe
    odd = Recipe(name='quote " and \\ backslash', why="ünïcode", distill={"layers": [0, 1], "alpha": 0.25,
                                                                          "augment": 2})
    (tmp_path / "odd.toml").write_text(dump_recipe(odd))
    assert load_recipe(str(tmp_path / "odd.toml")) == odd
