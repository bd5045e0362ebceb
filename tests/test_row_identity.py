"""The row recorder survives deep copies: a copy records its own rows and never rebuilds the original's
observation type (the first version closed over the original env)."""
from __future__ import annotations

import copy

import pytest

from interp.simulation.env import make_env
from interp.simulation.row_identity import install_row_recorder
from tests.rollout_support import ENV_CONFIG
from interp.model.config import load_env_config


@pytest.mark.parametrize("fast_sim", [False, True])
def test_a_deep_copy_of_a_recording_env_records_its_own_rows_and_leaves_the_original_alone(fast_sim):
    env = make_env(load_env_config(ENV_CONFIG), fast_sim=fast_sim)
    install_row_recorder(env)
    env.reset(seed=5)
    original = env.unwrapped
    obs_type_before, rows_before = original.observation_type, original._hypodrive_rows
    twin = copy.deepcopy(original)
    twin.reset(seed=9)  # define_spaces() builds a new observation type: the copy's, not the original's
    assert original.observation_type is obs_type_before and original._hypodrive_rows == rows_before
    assert twin.observation_type is not obs_type_before
    assert twin.observation_type.observe.unwrapped is twin  # the copy's observe records into the copy
    assert twin._hypodrive_rows is not None and twin._hypodrive_rows[0] >= 0
    twin.step(1)
    assert original._hypodrive_rows == rows_before  # stepping the copy never writes into the original
