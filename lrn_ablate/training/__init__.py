"""Stage 2, training: the loop (loop.py), its steps, checkpoints, signals, process settings and the W&B
mirror, writing the run directory (lrn_ablate.rundir) as it goes."""
