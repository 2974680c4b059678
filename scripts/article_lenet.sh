#!/usr/bin/env bash
# The article study (results/article_lenet): LeNet on CIFAR-10 without and with LRN, seeds 0-4, 100 epochs
# each (experiment=lrn_article), then its report. The two arms run side by side as two sweeps with half
# the cores each (on a 2-core CPU that is ~1.5x the throughput of one sweep using both).
#
#   scripts/article_lenet.sh OUT [OVERRIDE...]
#   scripts/article_lenet.sh results/article_lenet dataset.root=../shared/data/cifar10-jpg
#
# Runs land in OUT/runs/<norm>/seed<N>/, the report in OUT/. Re-running the same command continues an
# interrupted study: finished runs are skipped, unfinished ones resume from their checkpoints.
set -euo pipefail
out=${1:?usage: scripts/article_lenet.sh OUT [OVERRIDE...]}
shift
threads=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))
pids=()
for norm in none lrn; do
  lrn-ablate train -m experiment=lrn_article "norm=$norm" seed=0,1,2,3,4 "trainer.threads=$threads" \
    "hydra.sweep.dir=$out/runs/$norm" 'hydra.sweep.subdir=seed${seed}' "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
lrn-ablate report "$out/runs" --out "$out" --runs
exit "$status"
