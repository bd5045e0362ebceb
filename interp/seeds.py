"""The one map of seed ranges: which episode seeds, scene-generator seeds and network-init seeds are used for what.

Every range here is disjoint from every other of its kind, so no verdict is fitted on the seeds that test it.
Code that needs seeds takes them from here (``range(*EPISODES["heldout"])``), never from a literal.

Episode seeds (``env.reset(seed=...)``), half-open ``[first, stop)``:

==================  ===================  ===================================================================
name                range                used by
==================  ===================  ===================================================================
``heldout``         0 .. 99,999          greedy evaluation (``python -m interp evaluate``, the reference
                                         agent's 500 held-out seeds 0..499), the behavioural rate specs and
                                         the attention-faithfulness specs' rollout states (seeds 0..59)
``ablation``        100,000 .. 199,999   paired per-head ablation specs (``specs/test_behavior.py``)
``aa``              200,000 .. 299,999   the A/A control of the ablation specs (the plain agent on other seeds)
``calibration``     300,000 .. 399,999   causal head roles (``interp.roles``: zero-ablation per head, paired)
``validation``      400,000 .. 499,999   validation during training / model selection (seeds 400,000..400,699
                                         are spent by the stage-1 and stage-2 reference choices, 400,700..401,699
                                         by the stage-3 choice of ``interp.training.reference_search``; a new
                                         choice takes seeds after 401,699)
``confirmation``    500,000 .. 599,999   a second validation set: confirms a choice made on ``validation`` before
                                         the one held-out evaluation (seeds 500,000..500,999 are spent by the
                                         stage-3 confirmation; a later confirmation takes seeds after them)
``final_heldout``   600,000 .. 600,999   the fresh held-out block of 1000 seeds for a new reference candidate:
                                         evaluated once (a guard file refuses a second time), by stage 3 on its
                                         choice only if the confirmation is within the bar; used for nothing else
``role_null_training``  601,000 .. 899,999  training episodes of the trained role null's networks (network i of
                                         the null trains on its own block of 100 seeds: ``role_null_block``)
``training``        >= 1,000,000         training episodes (``interp.train.train_seed``)
==================  ===================  ===================================================================

The machinery's own tests and benchmarks step episodes on fixed seeds of their own (77,000-80,250 in
``tests/test_fastsim.py`` and ``tests/test_fastsim_scope.py``, 900,000+ in ``benchmarks/``) to compare simulators,
never to decide a claim.

``--seed-offset N`` shifts ``heldout``, ``ablation`` and ``aa`` (a second run on other seeds); it must stay
below ``MAX_SEED_OFFSET`` so that an offset range never reaches the next range (the largest budget uses
800 paired seeds). ``calibration`` is never shifted: roles belong to the checkpoint, not to a run.

Scene-generator seeds (``numpy.random.default_rng``) of the scene families in ``specs/support/scenes.py`` and
``fixtures.role_scenes``: ``SCENES["calibration"]`` = 101 (the crossing-head spec's calibration set),
``SCENES["test"]`` = 202 (the scenes specs test on), ``SCENES["roles"]`` = 303 (the attention-role calibration
scenes, split into two disjoint halves).

Network-init seeds (``torch.manual_seed`` before building an untrained network of the same architecture):
``INITS["untrained"]`` = 0 (the untrained control), the specs' random-network controls 999..3010, the
attention-role null ``INITS["role_null"]`` (100,000 onwards) and the false-resolution test of that null
``INITS["role_null_check"]`` (200,000 onwards; never used by the null), and the *trained* role null's networks
``INITS["role_null_trained"]`` (300,000 onwards; their training episodes take ``EPISODES["role_null_training"]``, so
neither their weights nor their scenes are shared with any other run). The role tests' *trained* networks
take their training ``--seed`` (network init, exploration, replay and training envs) from
``INITS["role_check_short"]`` = 500..749 (trained <= 100 episodes) and ``INITS["role_check_shuffled"]`` = 750..998
(trained with shuffled rewards), continued by ``role_check_short_more`` = 20..249 and
``role_check_shuffled_more`` = 250..480 (480 networks per condition in all): below 999 so that their training env
seeds ``(seed + 1) x 1,000,000 + episode`` stay inside ``training``, and above the zoo's and the reference's seeds
(0..12).
"""
from __future__ import annotations

EPISODES: dict[str, tuple[int, int]] = {
    "heldout": (0, 100_000),
    "ablation": (100_000, 200_000),
    "aa": (200_000, 300_000),
    "calibration": (300_000, 400_000),
    "validation": (400_000, 500_000),
    "confirmation": (500_000, 600_000),
    "final_heldout": (600_000, 601_000),
    "role_null_training": (601_000, 900_000),
    "training": (1_000_000, 2**31 - 1),
}
MAX_SEED_OFFSET = 90_000  # --seed-offset must stay below: range width 100,000 minus headroom for the budgets

SCENES: dict[str, int] = {"calibration": 101, "test": 202, "roles": 303}

INITS: dict[str, tuple[int, int]] = {
    "untrained": (0, 1),
    "role_check_short_more": (20, 250),
    "role_check_shuffled_more": (250, 481),
    "role_check_short": (500, 750),
    "role_check_shuffled": (750, 999),
    "spec_controls": (999, 3011),
    "role_null": (100_000, 200_000),
    "role_null_check": (200_000, 300_000),
    "role_null_trained": (300_000, 400_000),
}


def first(name: str) -> int:
    """The first episode seed of a named range."""
    return EPISODES[name][0]


def episode_seeds(name: str, n: int, offset: int = 0) -> range:
    """``n`` episode seeds of the named range, shifted by ``offset``; raises if they would leave the range."""
    lo, hi = EPISODES[name]
    if n < 0 or offset < 0:
        raise ValueError(f"episode_seeds: n and offset must be >= 0, got n={n}, offset={offset}")
    if lo + offset + n > hi:
        raise ValueError(f"{n} seeds of {name!r} from offset {offset} leave its range [{lo}, {hi})")
    return range(lo + offset, lo + offset + n)


ROLE_NULL_BLOCK = 100  # training episodes per network of the trained role null (one block of env seeds each)


def role_null_block(i: int) -> int:
    """First env seed of the trained role null's network i (``ROLE_NULL_BLOCK`` seeds from there); raises past
    the range's end (2,990 networks)."""
    lo, hi = EPISODES["role_null_training"]
    if i < 0 or lo + (i + 1) * ROLE_NULL_BLOCK > hi:
        raise ValueError(f"trained role null network {i} has no seed block in [{lo}, {hi})")
    return lo + i * ROLE_NULL_BLOCK


def init_seeds(name: str, n: int) -> range:
    """``n`` network-init seeds of the named range; raises if they would leave it."""
    lo, hi = INITS[name]
    if lo + n > hi:
        raise ValueError(f"{n} init seeds of {name!r} leave its range [{lo}, {hi})")
    return range(lo, lo + n)


def check_disjoint() -> None:
    """Raise if any two ranges of one kind overlap (the map's own invariant; tested)."""
    for kind, table in (("episode", EPISODES), ("init", INITS)):
        spans = sorted(table.items(), key=lambda kv: kv[1])
        for (a, (_, a_hi)), (b, (b_lo, _)) in zip(spans, spans[1:]):
            if b_lo < a_hi:
                raise ValueError(f"{kind} seed ranges {a!r} and {b!r} overlap")
    if len(set(SCENES.values())) != len(SCENES):
        raise ValueError("scene-generator seeds repeat")
