#!/usr/bin/env bash
# The normalization-family study (results/lenet_norms): the article's LeNet and settings
# (experiment=norm_family = experiment=lrn_article's settings) with BatchNorm, LayerNorm, InstanceNorm and
# GroupNorm, seeds 0-2, 100 epochs, run $JOBS at a time (default 2) on Hydra's joblib launcher. Its report
# pools them with the article study's none and lrn runs, which have the same settings: --ignore
# experiment_name is what pools them (the only key that differs).
#
#   scripts/lenet_norms.sh OUT ARTICLE_RUNS [OVERRIDE...]
#   scripts/lenet_norms.sh results/lenet_norms results/article_lenet/runs dataset.root=../shared/data/cifar10-jpg
#
# Runs land in OUT/runs/<norm>-seed<N>/, the report in OUT/ (baseline none) and OUT/vs_lrn/ (baseline lrn).
# The same command continues an interrupted study.
set -euo pipefail
out=${1:?usage: scripts/lenet_norms.sh OUT ARTICLE_RUNS [OVERRIDE...]}
article=${2:?usage: scripts/lenet_norms.sh OUT ARTICLE_RUNS [OVERRIDE...]}
shift 2
status=0
lrn-ablate train -m experiment=norm_family norm=bn,ln,in,gn seed=0,1,2 \
  hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS:-2}" \
  "hydra.sweep.dir=$out/runs" 'hydra.sweep.subdir=${norm.name}-seed${seed}' "$@" || status=$?
lrn-ablate report "$out/runs" "$article" --out "$out" --ignore experiment_name --runs
lrn-ablate report "$out/runs" "$article" --out "$out/vs_lrn" --ignore experiment_name --baseline norm=lrn
exit "$status"
