#!/bin/bash
# Mutants of the one-action-rule sites and the resample draw: each copies the worktree to /tmp/engine/mut,
# changes one site back to another rule (argmax, "margin > 0", a hash of the observation bytes) and runs the
# test that guards it; every line must report "failed". Run from anywhere: bash benchmarks/engine_mutants.sh
# Each mutant: a copy of the worktree with one site changed; the named test must fail.
PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
run() { # name file python-replacement-script test
  rm -rf /tmp/engine/mut; mkdir -p /tmp/engine/mut
  cd "$ROOT" && cp -r interp specs fixtures tests reports conftest.py pyproject.toml checkpoints /tmp/engine/mut/ 2>/dev/null
  cd /tmp/engine/mut && $PY -c "$2" && out=$(timeout 900 nice $PY -m pytest $3 -q -p no:xdist -p no:cacheprovider 2>&1 | tail -1)
  echo "$1 :: $out"
}
run engine-argmax "p='interp/simulation/rollout.py';s=open(p).read();o='best, near_tie = policy.choose(q)';assert o in s;open(p,'w').write(s.replace(o,'best, near_tie = q.argmax(-1), policy.choose(q)[1]'))" "tests/test_action_rule.py -k engine"
run replay-argmax "p='interp/simulation/rollout.py';s=open(p).read();o='best, near_tie = policy.choose(q)';assert o in s;open(p,'w').write(s.replace(o,'best, near_tie = q.argmax(-1), policy.choose(q)[1]'))" "tests/test_action_rule.py -k replay"
run decide-argmax "p='interp/model/policy.py';s=open(p).read();o='    actions, near_tie = choose(q)\n';assert o in s;open(p,'w').write(s.replace(o,'    actions, near_tie = q.argmax(-1), choose(q)[1]\n'))" "tests/test_action_rule.py -k agent_act"
run trainer-argmax "p='interp/training/train.py';s=open(p).read();o='policy.decide(self.value_net, obs).actions.tolist()';assert o in s;open(p,'w').write(s.replace(o,'self.value_net(torch.as_tensor(obs)).argmax(1).tolist()'))" "tests/test_action_rule.py -k trainer"
run fuzz-argmax "p='specs/fuzzing/properties.py';s=open(p).read();o='int(policy.choose(_q(subject, obs))[0])';assert o in s;open(p,'w').write(s.replace(o,'int(np.argmax(_q(subject, obs)))'))" "tests/test_action_rule.py -k fuzz"
run claims-margin "p='specs/support/claims.py';s=open(p).read();o='(policy.choose(q)[0] != SLOWER)';assert o in s;open(p,'w').write(s.replace(o,'(keep_speed_margin(q) > 0)'))" "tests/test_action_rule.py::test_the_action_claims_judge_the_rules_action tests/test_action_rule.py::test_action_unchanged_decides_with_the_rule"
run flips-argmax "p='interp/probes/interventions.py';s=open(p).read();o='policy.choose(np.asarray(q_before))[0] != policy.choose(np.asarray(q_after))[0]';assert o in s;open(p,'w').write(s.replace(o,'np.asarray(q_before).argmax(-1) != np.asarray(q_after).argmax(-1)'))" "tests/test_action_rule.py -k flips"
run lens-argmax "p='interp/probes/logit_lens.py';s=open(p).read();o='policy.choose(v)[0]';assert o in s;open(p,'w').write(s.replace(o,'v.argmax(-1)'))" "tests/test_action_rule.py -k lens"
run resample-obs-hash "import subprocess;open('interp/probes/interventions.py','w').write(subprocess.run(['git','-C','$ROOT','show','f40caef:interp/probes/interventions.py'],capture_output=True,text=True).stdout)" "tests/test_draws.py -k ulp"
run engine-keys-by-slot "p='interp/simulation/rollout.py';s=open(p).read();o='step=len(jobs[slot].actions), row=0,';assert o in s;open(p,'w').write(s.replace(o,'step=len(jobs[slot].actions), row=slot,'))" "tests/test_layouts.py -k resample_ablation"
run engine-no-keys "p='interp/simulation/rollout.py';s=open(p).read();o='PATTERN_HOOK if tracing else None, keys=keys)';assert o in s;open(p,'w').write(s.replace(o,'PATTERN_HOOK if tracing else None)'))" "tests/test_layouts.py -k resample_ablation"
