#!/usr/bin/env bash
# The AlexNet paper's CIFAR-10 LRN experiment (results/cudaconvnet_cifar10): cuda-convnet's network and
# training without (experiment=cudaconvnet_13pct) and with (experiment=cudaconvnet_11pct) its response
# normalization, seed 0, $JOBS at a time (default 2) on Hydra's joblib launcher, then the report.
# $EPOCHS (default 160, cuda-convnet's whole schedule) shortens the run; the learning-rate drops at
# epochs 140 and 150 only happen in runs that long.
#
#   scripts/cudaconvnet_cifar10.sh OUT [OVERRIDE...]
#   EPOCHS=10 scripts/cudaconvnet_cifar10.sh results/cudaconvnet_cifar10 dataset.root=../shared/data/cifar10-jpg
#
# Runs land in OUT/runs/<preset>/, the report in OUT/. The same command continues an interrupted study.
set -euo pipefail
out=${1:?usage: scripts/cudaconvnet_cifar10.sh OUT [OVERRIDE...]}
shift
status=0
lrn-ablate train -m experiment=cudaconvnet_13pct,cudaconvnet_11pct seed=0 "trainer.epochs=${EPOCHS:-160}" \
  hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS:-2}" \
  "hydra.sweep.dir=$out/runs" 'hydra.sweep.subdir=${hydra.runtime.choices.experiment}' "$@" || status=$?
lrn-ablate report "$out/runs" --out "$out" --runs
exit "$status"
