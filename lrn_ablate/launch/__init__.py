"""Stage 1, launch: the `train` command's Hydra app, the pre-launch check of every job's config, the job
wrapper that turns any outcome into a recorded run, the sweep tally and each job's share of the machine."""
