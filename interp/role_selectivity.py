"""Attention roles as selectivity beyond sharpness: a head's preference for a vehicle category, given the other
categories and distance, compared with random networks of the same architecture tempered to the head's entropy.

Why this rule. Mean attention mass per category (the earlier statistic) rewards sharpness and ego avoidance: a
head spread evenly over the vehicles beats a near-uniform random head on every category that fills many rows.
Here every statistic is a *contrast between vehicles of the same scene*, computed on the head's pre-softmax
scores (``attention_layer.hook_scores``):

- **Conditional fit (scene fixed effects).** Over the present vehicle rows (ego excluded), the head's scores are
  regressed on the category indicators (``VEHICLE_CATEGORIES``) and the distance to the ego, with one intercept
  per scene. The fixed effects are removed by the within transform (demeaning every column per scene), which
  gives the same slopes as OLS with scene dummies (``tests/test_roles.py`` checks it against statsmodels). A
  category's slope is its preference *given the other categories and distance*, so a head drawn to the nearest
  vehicle does not get ``crossing`` because crossing cars are often nearest. Distance bands cannot be separated
  from distance, so ``proximity`` is the distance slope (both tails; its sign says near or far). ``ego`` is the
  per-scene difference between the ego row's score and the vehicles' mean score.
- **The statistic is each slope's t-statistic** (slope / its OLS standard error; for ``ego`` the one-sample t of
  the per-scene differences). It is scale-free: multiplying a head's scores (tempering it, sharpening it) moves
  slopes and residuals alike, so sharpness alone cannot create selectivity, and a null network tempered to the
  head's own entropy has the same statistics as untempered. The matched temperatures are still computed (on
  stored scores, no extra forward pass) and reported. Comparing score-unit slopes with an entropy-matched null
  instead was measured and rejected: matching a near-one-hot head's entropy needs enormous null temperatures
  (near-tied vehicles dominate the mean entropy), so sharp planted heads failed to resolve.
- **Why not the OLS p-values.** OLS's p-values treat the residuals as independent noise, but random heads *do*
  prefer vehicles by their features (a random head is nearly linear in distance on these scenes); those
  preferences are systematic, so OLS would call a random head selective. The t-statistic is instead referred to
  its distribution over ``n`` randomly initialised networks of the agent's architecture (init seeds
  ``interp.seeds.INITS["role_null"]``), head by head: a Monte-Carlo test.
- **Max statistic.** Each head x test gets a Monte-Carlo p-value (its rank among the null networks' same head;
  ``proximity`` is two tests, one per tail), adjusted by the distribution of the *minimum* p-value over all
  heads x tests of each null network (Westfall-Young min-p, each null network ranked against the others). So the
  chance that a network drawn like the null gets any role is at most ``ALPHA`` per half; the null has
  ``heads x tests / ALPHA`` networks, so a statistic beyond every null network reaches adjusted p <= ``ALPHA``.
  The scenes are split into two disjoint halves; a head holds a role only if its adjusted p-value is at most
  ``ALPHA`` on **each** half (a replication).
- **Why ALPHA = 0.01 and heads x tests / ALPHA null networks** (the size and power argument; see ``ALPHA``).
  *Size:* the max statistic bounds the chance that a network drawn like the null gets any role by ``ALPHA`` per
  half, and no lower: the two halves' statistics of one network are strongly correlated, so the replication
  hardly helps (at 0.05, 5/80 and 4/80 random networks with a x3 query got a role). The false-resolution tests
  demand a 95 % Wilson upper bound <= 5 % on their rate, so ``ALPHA`` must sit well below 5 %: with
  ``RATE_TRIES`` = 240 tries the bound admits at most 5 hits, which a rule of true rate 0.01 meets with
  probability 0.965 (binomial) and a rule of rate 0.05 with probability 0.018, so the test passes a correct rule
  and fails the old one. *Power / resolution:* a Monte-Carlo p-value has resolution 1 / (K + 1), and the
  ``ALPHA``-quantile of a null network's smallest p over heads x tests lies near ``ALPHA`` / (heads x tests)
  (Sidak, for independent tests; dependence only raises it), so K = heads x tests / ``ALPHA`` null networks are
  needed for a statistic in the null's far tail (not only one beyond every null network) to reach adjusted
  p <= ``ALPHA``: 1,800 / 3,600 / 7,200 networks for 2 / 4 / 8 heads. The null is built once per architecture
  and cached (``interp.roles.null_for``); the agent-independent parts of the test (the null's sorted statistics
  and min-p distribution) are computed once per null, so one more network costs one forward pass and a few
  searches.
- **Beyond training without the task.** Where the architecture's trained null is complete
  (``interp.role_trained_null``: networks trained with shuffled rewards and gamma 0, heads pooled, Bonferroni over
  heads x tests), a role must also reach adjusted p <= ``ALPHA`` on both halves against it (``trained=``; the
  larger of the two p-values counts: an intersection-union test).
- **Matched temperatures are reported, not tested.** The t-statistics do not move with temperature, so the
  temperatures matched to each head's entropy are a description (the JSON's ``null_temperature_median``):
  they are computed on the first ``TEMPERATURE_NETWORKS`` null networks only, which keeps their cost fixed
  however large the null is.

Pure numpy; the regression is hand-written (pseudo-inverse of the demeaned design) because one matrix then
serves the agent and thousands of null heads at once.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

VEHICLE_CATEGORIES = ("crossing", "crossing_left", "crossing_right", "oncoming", "ahead", "behind")
CATEGORIES = ("ego", *VEHICLE_CATEGORIES, "proximity")
TWO_SIDED = frozenset({"proximity"})
ALPHA = 0.01  # family-wise error of the max statistic per half; why 0.01: the module docstring (size and power)
RATE_TRIES = 240  # tries of each false-resolution test: <= 5 hits keep the Wilson bound <= 5 % (see the docstring)
TEMPERATURE_NETWORKS = 100  # null networks whose matched temperatures are computed (reported, not tested)
MIN_SCENES_PER_HALF = 10  # scenes of a half where the category varies among the vehicles; fewer: untestable
LOG_T_GRID = np.linspace(-8.0, 14.0, 89)  # null temperatures exp(-8)..exp(14) (random heads start near uniform)
MASKED = -1e8  # pre-softmax scores below this are masked rows (the network fills them with -1e9)


_BLAS = ThreadpoolController()


def one_blas_thread():
    """A context with numpy's BLAS on one thread. The products here are many and small; on a loaded machine
    BLAS's threads spin against each other (one chunk of 64 null networks' residual products: 11 s with the
    default threads, 0.12 s with one, on 2 shared cores; the 9 always-on rate tests took 72 s with the default
    threads, and with one thread 28 s together with 3 more tests)."""
    return _BLAS.limit(limits=1, user_api="blas")


N_TESTS = len(CATEGORIES) + len(TWO_SIDED)  # tests per head: a two-sided statistic is two one-sided tests


def n_null(n_heads: int, n_tests: int = N_TESTS, alpha: float = ALPHA) -> int:
    """Null networks for a max statistic over heads x tests (a two-sided statistic is two one-sided tests):
    heads x tests / alpha, so that a statistic beyond every null network reaches adjusted p <= alpha."""
    return int(math.ceil(n_heads * n_tests / alpha))


def halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The two disjoint calibration halves: even and odd scene indices."""
    idx = np.arange(n)
    return idx[0::2], idx[1::2]


# ------------------------------------------------------------------------------------------ the design
@dataclasses.dataclass(frozen=True)
class Design:
    """The calibration scenes as linear maps from a head's scores [B, N] to its statistics, per half."""

    operators: tuple[np.ndarray, np.ndarray]  # per half [P, B*N]: scores (flattened) -> statistics
    within: tuple[np.ndarray, np.ndarray]  # per half [R, B*N]: scores -> within-scene demeaned vehicle scores
    residual: tuple[np.ndarray, np.ndarray]  # per half [R, B*N]: scores -> residuals of the within-scene fit
    dof: tuple[int, int]  # residual degrees of freedom (rows - scenes - slopes)
    unscaled_se: np.ndarray  # [2, P] sqrt((X'X)^-1)_jj of each slope (0 for ego and untestable ones)
    ego_differences: tuple[np.ndarray, np.ndarray]  # per half [S, B*N]: ego minus mean vehicle score, per scene
    testable: np.ndarray  # [2, P] bool
    n_scenes: np.ndarray  # [2, P] scenes of the half where the statistic has variation
    vehicles: np.ndarray  # [B, N] bool: present vehicle rows (ego excluded)
    entropy_scenes: np.ndarray  # scene indices with >= 2 vehicles (where vehicle entropy is not 0)
    categories: tuple[str, ...] = CATEGORIES


def _within(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each column of ``x`` [R, P] minus its mean within each group (the fixed-effects within transform)."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), x.shape[1]))
    np.add.at(sums, inverse, x)
    return x - (sums / counts[:, None])[inverse]


def build_design(masks: Mapping[str, np.ndarray], distance: np.ndarray, vehicles: np.ndarray) -> Design:
    """The linear operators of both halves. ``masks``: category -> [B, N] bool (VEHICLE_CATEGORIES; missing ones
    count as absent); ``distance`` [B, N] metres to the ego (any value off the vehicle rows); ``vehicles`` [B, N]
    bool, the present vehicle rows (row 0, the ego, is never one)."""
    vehicles = np.asarray(vehicles, dtype=bool).copy()
    vehicles[:, 0] = False
    b, n = vehicles.shape
    if not np.all(np.isfinite(np.asarray(distance, dtype=float)[vehicles])):
        raise ValueError("every present vehicle row needs a finite distance to the ego")
    counts = vehicles.sum(1)
    operators, testable, n_scenes, withins, residuals, dofs, ses, egos = [], [], [], [], [], [], [], []
    for half in halves(b):
        op = np.zeros((len(CATEGORIES), b * n))
        ok = np.zeros(len(CATEGORIES), dtype=bool)
        seen = np.zeros(len(CATEGORIES), dtype=int)
        # ego: mean over the half's scenes with a vehicle of (ego score - mean vehicle score)
        with_vehicle = half[counts[half] >= 1]
        for s in with_vehicle:
            op[0, s * n] += 1.0 / len(with_vehicle)
            rows = np.flatnonzero(vehicles[s])
            op[0, s * n + rows] -= 1.0 / (len(rows) * len(with_vehicle))
        seen[0] = len(with_vehicle)
        ego_d = np.zeros((len(with_vehicle), b * n))
        for i, sc in enumerate(with_vehicle):
            ego_d[i, sc * n] = 1.0
            rows = np.flatnonzero(vehicles[sc])
            ego_d[i, sc * n + rows] = -1.0 / len(rows)
        egos.append(ego_d)
        se = np.zeros(len(CATEGORIES))
        ok[0] = len(with_vehicle) >= MIN_SCENES_PER_HALF
        # vehicle categories + distance: within-scene OLS over scenes with >= 2 vehicles
        multi = half[counts[half] >= 2]
        scene_of, row_of = np.nonzero(vehicles[multi])
        scene_of = multi[scene_of]
        cols = [np.asarray(masks[c], dtype=float)[scene_of, row_of] if c in masks else np.zeros(len(scene_of))
                for c in VEHICLE_CATEGORIES]
        cols.append(np.asarray(distance, dtype=float)[scene_of, row_of])
        x = _within(np.stack(cols, axis=1), scene_of) if len(scene_of) else np.zeros((0, len(cols)))
        varies = np.zeros(len(cols), dtype=int)
        for j in range(len(cols)):  # scenes where the column is not constant among the vehicles
            varies[j] = len(np.unique(scene_of[np.abs(x[:, j]) > 1e-9]))
        keep = [j for j in range(len(cols)) if varies[j] >= MIN_SCENES_PER_HALF]
        w = np.zeros((len(scene_of), b * n))
        w[np.arange(len(scene_of)), scene_of * n + row_of] = 1.0
        w = _within(w, scene_of) if len(scene_of) else w
        withins.append(w)
        resid_op = w
        if keep:
            pinv = np.linalg.pinv(x[:, keep])  # [len(keep), R]
            resid_op = w - x[:, keep] @ (pinv @ w)
            resid = x[:, keep] - x[:, keep] @ (pinv @ x[:, keep])
            assert np.allclose(resid, 0.0, atol=1e-6)
            # a column the others explain almost fully cannot be separated from them: untestable
            for i, j in enumerate(keep):
                others = [k for k in keep if k != j]
                if others:
                    fit = x[:, others] @ np.linalg.lstsq(x[:, others], x[:, j], rcond=None)[0]
                    share = float(np.sum((x[:, j] - fit) ** 2) / np.sum(x[:, j] ** 2))
                else:
                    share = 1.0
                if share < 0.05:
                    continue
                op[1 + j, scene_of * n + row_of] = pinv[i]
                se[1 + j] = float(np.sqrt(np.sum(pinv[i] ** 2)))  # (X'X)^-1 = pinv pinv'
                ok[1 + j] = True
        seen[1:] = varies
        operators.append(op)
        residuals.append(resid_op)
        dofs.append(max(1, len(scene_of) - len(np.unique(scene_of)) - len(keep)))
        ses.append(se)
        testable.append(ok)
        n_scenes.append(seen)
    return Design(operators=(operators[0], operators[1]), within=(withins[0], withins[1]),
                  residual=(residuals[0], residuals[1]), dof=(dofs[0], dofs[1]), unscaled_se=np.stack(ses),
                  ego_differences=(egos[0], egos[1]), testable=np.stack(testable), n_scenes=np.stack(n_scenes),
                  vehicles=vehicles, entropy_scenes=np.flatnonzero(counts >= 2))


def raw_statistics(design: Design, scores: np.ndarray) -> np.ndarray:
    """[2, ..., P] statistics of heads' scores [..., B, N] in score units (masked rows carry no weight)."""
    flat = np.where(scores < MASKED, 0.0, scores).reshape(*scores.shape[:-2], -1).astype(np.float64)
    return np.stack([flat @ op.T for op in design.operators])


def statistics(design: Design, scores: np.ndarray) -> np.ndarray:
    """[2, ..., P] scale-free statistics of heads' scores [..., B, N]: each slope's t-statistic in the
    within-scene fit (slope / its OLS standard error), and for ``ego`` the one-sample t-statistic of the per-scene
    ego-minus-vehicles difference. Tempering multiplies a head's scores, slopes and residuals alike, so these do not
    move with it; a head the fit explains exactly gets +-inf (0 where the slope is 0 too)."""
    flat = np.where(scores < MASKED, 0.0, scores).reshape(*scores.shape[:-2], -1).astype(np.float64)
    out = []
    for half in range(2):
        raw = flat @ design.operators[half].T  # [..., P]
        sigma = np.sqrt(np.sum((flat @ design.residual[half].T) ** 2, axis=-1) / design.dof[half])  # [...]
        d = flat @ design.ego_differences[half].T  # [..., S]
        ego_se = d.std(-1, ddof=1) / np.sqrt(d.shape[-1])
        se = sigma[..., None] * design.unscaled_se[half]
        se[..., 0] = ego_se
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, raw / np.where(se > 0, se, 1.0), np.sign(raw) * np.inf)
        t = np.where((se <= 0) & (raw == 0), 0.0, t)
        out.append(np.where(design.testable[half], t, 0.0))
    return np.stack(out)


# ------------------------------------------------------------------------------------------ sharpness
def _vehicle_scores(design: Design, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores [..., S, V] of the vehicles of the multi-vehicle scenes (padded) and their mask [S, V]."""
    veh = design.vehicles[design.entropy_scenes]  # [S, N]
    width = int(veh.sum(1).max()) if len(veh) else 1
    order = np.argsort(~veh, axis=1, kind="stable")[:, :width]  # vehicle rows first
    valid = np.take_along_axis(veh, order, axis=1)
    sub = scores[..., design.entropy_scenes, :]
    picked = np.take_along_axis(sub, np.broadcast_to(order, sub.shape[:-1] + (width,)), axis=-1)
    return picked.astype(np.float64), valid


_FAR = -1e30  # stands for an absent vehicle's score: exp() gives 0 and 0 x it stays finite


def _entropy(v: np.ndarray, valid: np.ndarray, log_t: np.ndarray, slope: bool = False):
    """Mean entropy over scenes of softmax(exp(log_t) * v) over the valid vehicles: v [..., S, V], log_t [...].
    With ``slope`` also its derivative in log_t, -T^2 x the mean over scenes of Var_p(v)."""
    t = np.exp(log_t)[..., None, None]
    z = t * np.where(valid, v, _FAR)
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    total = e.sum(-1)
    p = e / total[..., None]
    ent = np.log(total) - np.sum(p * z, axis=-1)
    if not slope:
        return ent.mean(-1)
    vz = np.where(valid, v, 0.0)
    mean = np.sum(p * vz, -1)
    var = np.sum(p * vz * vz, -1) - mean ** 2
    return ent.mean(-1), -(t[..., 0, 0] ** 2) * np.maximum(var, 0.0).mean(-1)


def vehicle_entropy(design: Design, scores: np.ndarray) -> np.ndarray:
    """Mean entropy (nats) of the attention renormalised over the vehicles, over the scenes with >= 2 vehicles:
    [...] for heads' scores [..., B, N]."""
    v, valid = _vehicle_scores(design, scores)
    return _entropy(v, valid, np.zeros(v.shape[:-2]))


def entropy_curves(v: np.ndarray, valid: np.ndarray, chunk: int = 16) -> np.ndarray:
    """[..., G] mean vehicle entropy of heads with vehicle scores ``v`` [..., S, V] at each ``LOG_T_GRID`` point
    (non-increasing along the grid); chunked over the leading axis for memory."""
    out = [_entropy(v[i:i + chunk, ..., None, :, :], valid, np.broadcast_to(LOG_T_GRID, v[i:i + chunk].shape[:-2]
                                                                          + LOG_T_GRID.shape))
           for i in range(0, len(v), chunk)]
    return np.concatenate(out)


def matching_log_temperature(v: np.ndarray, valid: np.ndarray, curves: np.ndarray, target: np.ndarray,
                             newton_steps: int = 4) -> np.ndarray:
    """Per null head (vehicle scores ``v`` [..., S, V], entropy curve [..., G]), the log-temperature at which its
    mean vehicle entropy equals ``target`` (broadcast to [...]): the grid bracket, linear interpolation, then
    Newton steps kept inside the bracket. A target outside the reachable range gets the grid's end."""
    target = np.broadcast_to(target, curves.shape[:-1])
    above = (curves > target[..., None]).sum(-1)  # grid points still more spread than the target
    i = np.clip(above, 1, curves.shape[-1] - 1)
    c0 = np.take_along_axis(curves, (i - 1)[..., None], -1)[..., 0]
    c1 = np.take_along_axis(curves, i[..., None], -1)[..., 0]
    lo, hi = LOG_T_GRID[i - 1], LOG_T_GRID[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(c0 > c1, (c0 - target) / (c0 - c1), 0.0)
    x = lo + np.clip(frac, 0.0, 1.0) * (hi - lo)
    for _ in range(newton_steps):
        ent, d = _entropy(v, valid, x, slope=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - (ent - target) / d
        x = np.where(np.isfinite(newton) & (newton > lo) & (newton < hi), newton, x)
    x = np.where(above == 0, LOG_T_GRID[0], x)
    return np.where(above == curves.shape[-1], LOG_T_GRID[-1], x)


# ------------------------------------------------------------------------------------------ the null and the test
@dataclasses.dataclass(frozen=True)
class Null:
    """Random networks' raw statistics and vehicle scores (the agent's heads pick their temperatures from these)."""

    stats: np.ndarray  # [2, K, H, P] scale-free statistics of each null network's heads
    raw: np.ndarray  # [2, K, H, P] the same in score units (slopes, ego difference), untempered
    vehicle_scores: np.ndarray  # [M, H, S, V] the first M networks' scores on the multi-vehicle scenes' vehicles
    curves: np.ndarray  # [M, H, G] their mean vehicle entropy on LOG_T_GRID (M <= TEMPERATURE_NETWORKS)
    seeds: tuple[int, int]
    # agent-independent parts of the test, computed once per null (sorted statistics, min-p distribution)
    memo: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        return self.stats.shape[1]


def make_null(design: Design, null_scores: np.ndarray, seeds: tuple[int, int],
              temperature_networks: int = TEMPERATURE_NETWORKS) -> Null:
    """The null from the scores [K, H, B, N] of K random networks (vehicle scores and entropy curves of the first
    ``temperature_networks`` only: they serve the reported temperatures)."""
    s = np.asarray(null_scores)
    v, valid = _vehicle_scores(design, s[:max(0, temperature_networks)])
    curves = entropy_curves(v, valid) if len(v) else np.zeros((0, *v.shape[1:-2], len(LOG_T_GRID)))
    return Null(stats=statistics(design, s), raw=raw_statistics(design, s), vehicle_scores=v, curves=curves,
                seeds=seeds)


@dataclasses.dataclass(frozen=True)
class Selectivity:
    """Per half, head and statistic: the agent's value, raw and max-adjusted p-values, quantile among the nulls."""

    categories: tuple[str, ...]
    statistic: np.ndarray  # [2, H, P]
    p_raw: np.ndarray  # [2, H, P]
    p_adjusted: np.ndarray  # [2, H, P] (NaN where untestable)
    quantile: np.ndarray  # [2, H, P] share of tempered null statistics below the agent's
    entropy: np.ndarray  # [H] the agent head's mean vehicle entropy (nats)
    null_log_temperature: np.ndarray  # [K, H]
    null_median: np.ndarray  # [2, H, P] tempered null median
    null_q95: np.ndarray  # [2, H, P]
    testable: np.ndarray  # [2, P]
    n_scenes: np.ndarray  # [2, P]
    n_null: int
    null_seeds: tuple[int, int]
    roles: dict[str, list[int]]
    reasons: dict[str, str]
    # against the trained null (interp.role_trained_null), where it was applied; else None and 0 networks
    p_trained: np.ndarray | None = None  # [2, H, P] Bonferroni-adjusted pooled p-values
    n_trained: int = 0

    @property
    def n_heads(self) -> int:
        return self.statistic.shape[1]


def _p_values(null: np.ndarray, value: np.ndarray | None, two_sided: np.ndarray, leave_one_out: bool,
              ordered: np.ndarray | None = None) -> np.ndarray:
    """Monte-Carlo p-values against ``null`` [K, H, P]: of ``value`` [H, P] ((1 + as extreme) / (K + 1)), or with
    ``leave_one_out`` of every null draw ranked among the others [K, H, P]. Upper tail; where ``two_sided`` [P],
    the smaller of the two tails' p-values (each tail is one test of the family: the min-p adjustment sees both).
    ``ordered``: the null already sorted along K and flattened to [K, H x P] (saves the sort when reused)."""
    k = null.shape[0]
    if ordered is None:
        ordered = np.sort(null.reshape(k, -1), axis=0)
    vals = null.reshape(k, -1) if leave_one_out else value.reshape(1, -1)
    ge = np.empty(vals.shape)
    le = np.empty(vals.shape)
    for j in range(ordered.shape[1]):
        ge[:, j] = k - np.searchsorted(ordered[:, j], vals[:, j], side="left")
        le[:, j] = np.searchsorted(ordered[:, j], vals[:, j], side="right")
    if leave_one_out:  # the draw itself is among the counted ones: (1 + others) / (K - 1 + 1)
        p_up, p_low = ge / k, le / k
    else:
        p_up, p_low = (1 + ge) / (k + 1), (1 + le) / (k + 1)
    two = np.broadcast_to(two_sided, null.shape[1:]).reshape(1, -1)
    p = np.where(two, np.minimum(p_up, p_low), p_up)  # both tails: two tests, counted in the max statistic
    return p.reshape(null.shape if leave_one_out else value.shape)


def test_selectivity(design: Design, null: Null, scores: np.ndarray, *, alpha: float = ALPHA,
                     scale_free: bool = True, trained=None) -> Selectivity:
    """The agent's selectivity per head x category against the tempered null, and the roles (see the module).

    ``trained``: a trained null (``interp.role_trained_null.TrainedNull``, complete for the architecture); a role
    then also needs adjusted p <= alpha on both halves against it (an intersection-union test).
    ``scale_free=False`` compares score-unit statistics with the null tempered to each head's entropy instead: kept
    to measure why it was not chosen (sharp planted heads fail to resolve, see ``docs/guide/roles.md``)."""
    with one_blas_thread():
        return _test_selectivity(design, null, scores, alpha, scale_free, trained)


def _test_selectivity(design: Design, null: Null, scores: np.ndarray, alpha: float, scale_free: bool,
                      trained=None) -> Selectivity:
    scores = np.moveaxis(np.asarray(scores), 1, 0)  # [H, B, N]
    n_heads = scores.shape[0]
    if null.stats.shape[2] != n_heads:
        raise ValueError(f"the null has {null.stats.shape[2]} heads per network, the agent {n_heads}: build the null "
                         "from networks of the agent's architecture")
    cats = design.categories
    two = np.array([c in TWO_SIDED for c in cats])
    entropy = vehicle_entropy(design, scores)  # [H]
    valid = _vehicle_scores(design, scores)[1]
    log_t = matching_log_temperature(null.vehicle_scores, valid, null.curves, entropy[None, :])  # [M, H]
    if scale_free:  # tempering multiplies a head's slopes and residuals alike: the t-statistics do not move
        agent = statistics(design, scores)  # [2, H, P]
        key = ("scale-free", design.testable.tobytes(), cats)
        if key not in null.memo:  # the agent-independent parts, once per null
            null.memo.clear()
            null.memo[key] = _null_parts(null.stats, design.testable, two)
        tempered = null.stats
    else:  # only the first M null networks have matched temperatures
        agent = raw_statistics(design, scores)
        tempered = null.raw[:, :len(log_t)] * np.exp(log_t)[None, :, :, None]  # [2, M, H, P]
        key = None
    ordered, min_p, median, q95 = null.memo[key] if key else _null_parts(tempered, design.testable, two)
    k = tempered.shape[1]
    p_raw = np.stack([_p_values(tempered[i], agent[i], two, False, ordered[i]) for i in range(2)])
    p_adj = np.stack([(1 + (min_p[i][:, None, None] <= p_raw[i][None]).sum(0)) / (k + 1) for i in range(2)])
    p_adj = np.where(design.testable[:, None, :], p_adj, np.nan)
    quantile = (tempered < agent[:, None]).mean(1)
    p_trained = None
    if trained is not None:
        from interp.role_trained_null import adjusted_p

        if not scale_free:
            raise ValueError("the trained null holds scale-free statistics only")
        p_trained = adjusted_p(trained, agent, design.testable, two)
    roles, reasons = _resolve(cats, agent, p_adj, design, k, alpha, p_trained,
                              trained.n_networks if trained is not None else 0)
    return Selectivity(categories=cats, statistic=agent, p_raw=p_raw, p_adjusted=p_adj, quantile=quantile,
                       entropy=entropy, null_log_temperature=log_t, null_median=median, null_q95=q95,
                       testable=design.testable, n_scenes=design.n_scenes, n_null=k, null_seeds=null.seeds,
                       roles=roles, reasons=reasons, p_trained=p_trained,
                       n_trained=trained.n_networks if trained is not None else 0)


def _null_parts(tempered: np.ndarray, testable: np.ndarray, two: np.ndarray):
    """What the test needs of the null [2, K, H, P] whatever the agent: per half the sorted statistics [K, H x P],
    each null network's smallest leave-one-out p-value over the testable heads x tests [K] (the min-p
    distribution), and the null's median and 95th percentile [H, P]."""
    k = tempered.shape[1]
    ordered = [np.sort(tempered[i].reshape(k, -1), axis=0) for i in range(2)]
    p_null = np.stack([_p_values(tempered[i], None, two, True, ordered[i]) for i in range(2)])  # [2, K, H, P]
    mask = np.broadcast_to(testable[:, None, None, :], p_null.shape)
    min_p = np.where(mask, p_null, np.inf).reshape(2, k, -1).min(-1)  # [2, K]
    return ordered, min_p, np.median(tempered, axis=1), np.quantile(tempered, 0.95, axis=1)


def _resolve(cats: Sequence[str], stat: np.ndarray, p_adj: np.ndarray, design: Design, k: int,
             alpha: float, p_trained: np.ndarray | None = None,
             n_trained: int = 0) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Role c is held by the heads whose adjusted p-value is <= alpha on both halves (against both nulls where a
    trained null is given: the larger of the two p-values counts), strongest (largest of the two halves' p-values
    smallest, then largest statistic) first."""
    if p_trained is not None:
        p_adj = np.fmax(p_adj, p_trained)  # intersection-union: beyond the initialised AND the trained networks
    roles: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for j, name in enumerate(cats):
        if not design.testable[:, j].all():
            roles[name] = []
            reasons[name] = (f"untestable: the {name} statistic varies within too few scenes, or the other "
                             f"categories explain it ({int(design.n_scenes[0, j])} and {int(design.n_scenes[1, j])} "
                             f"scenes per half; need {MIN_SCENES_PER_HALF})")
            continue
        worst = np.nanmax(p_adj[:, :, j], axis=0)  # [H]

        def most_selective_first(h: int, j: int = j, worst: np.ndarray = worst) -> tuple[float, float]:
            """Smallest p first; ties (e.g. several heads at p 1 after the trained null's Bonferroni) by |t|."""
            return (worst[h] if np.isfinite(worst[h]) else np.inf, -abs(stat[:, h, j]).min())

        heads = sorted(np.flatnonzero(worst <= alpha).tolist(), key=most_selective_first)
        roles[name] = heads
        best = heads[0] if heads else min(range(len(worst)), key=most_selective_first)
        sign = ""
        if name == "proximity":
            sign = " (prefers near vehicles)" if stat[:, best, j].mean() < 0 else " (prefers far vehicles)"
        against = f"{k} random networks tempered to the head's entropy"
        if p_trained is not None:
            against += f" and {n_trained} networks trained without task information, the larger p"
        text = (f"head {best}: t {stat[0, best, j]:+.2f} / {stat[1, best, j]:+.2f}{sign}, "
                f"max-adjusted p {p_adj[0, best, j]:.3g} / {p_adj[1, best, j]:.3g} on the two halves "
                f"({against}, alpha {alpha})")
        reasons[name] = text if heads else f"no head is selective on both halves; best {text}"
    return roles, reasons
