#!/usr/bin/env bash
# The wide-network study (results/alexnet_cifar_norms): model=alexnet_cifar (two towers, 48-192 channels a
# layer) on CIFAR-10 with flip-and-crop augmentation (experiment=alexnet_cifar) without normalization,
# with the AlexNet paper's LRN and with BatchNorm, seed 0, $EPOCHS epochs (default 15), $JOBS at a time
# (default 2) on Hydra's joblib launcher, then its report.
#
#   scripts/alexnet_cifar_norms.sh OUT [OVERRIDE...]
#   scripts/alexnet_cifar_norms.sh results/alexnet_cifar_norms dataset.root=../shared/data/cifar10-jpg
#
# Runs land in OUT/runs/<norm>/, the report in OUT/. The same command continues an interrupted study.
set -euo pipefail
out=${1:?usage: scripts/alexnet_cifar_norms.sh OUT [OVERRIDE...]}
shift
status=0
lrn-ablate train -m experiment=alexnet_cifar norm=none,lrn_alexnet,bn seed=0 "trainer.epochs=${EPOCHS:-15}" \
  hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS:-2}" \
  "hydra.sweep.dir=$out/runs" 'hydra.sweep.subdir=${hydra.runtime.choices.norm}' "$@" || status=$?
lrn-ablate report "$out/runs" --out "$out" --runs
exit "$status"
