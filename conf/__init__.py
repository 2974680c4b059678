"""The configs of `lrn-ablate train`. Importing this package, as Hydra does to read them, registers the
${started:...} resolver that conf/config.yaml names the run directory with, so any composition resolves."""

from omegaconf import OmegaConf

from lrn_ablate.launch.torchrun import started

# The run directory's time stamp: the same on every rank of a torchrun run.
OmegaConf.register_new_resolver("started", started, use_cache=True, replace=True)
