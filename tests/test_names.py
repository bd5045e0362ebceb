"""The hook-name authority (``interp.model.names``) names exactly the model's hook points."""
from __future__ import annotations

import pytest

from interp.model import names
from interp.model.batch import as_batch
from interp.errors import ConfigError
from tests.planted import planted_model


def test_every_name_in_the_authority_is_a_hook_point_of_the_model():
    model = planted_model()
    short = ["input", "mask", "residual", "q_values", "queries", "keys", "values", "scores", "pattern", "z",
             "head_out", "combined", "ego"]
    for name in short:
        assert names.act_name(name) in model.hook_dict, name
    for name, layers in (("ego_hidden", 2), ("others_hidden", 2), ("output_hidden", 2)):
        for layer in range(layers):
            assert names.act_name(name, layer) in model.hook_dict
    assert names.act_name("pattern") == names.PATTERN == "attention_layer.hook_pattern"


def test_act_name_refuses_what_it_cannot_name():
    with pytest.raises(ValueError, match="unknown activation"):
        names.act_name("attention")
    with pytest.raises(ValueError, match="give its index"):
        names.act_name("output_hidden")
    with pytest.raises(ValueError, match="has no layers"):
        names.act_name("pattern", 0)


def test_as_batch_makes_one_scene_a_batch_and_refuses_other_shapes():
    import numpy as np

    assert as_batch(np.zeros((15, 7))).shape == (1, 15, 7) and as_batch(np.zeros((2, 15, 7))).dtype.is_floating_point
    with pytest.raises(ConfigError, match="batch, rows, features"):
        as_batch(np.zeros(7))
