"""`lrn-ablate report`: from run directories (or a W&B project) to comparison plots and tables.

The package reads only the run-directory contract (config.yaml, metrics.csv, summary.json) and never
imports torch, so reports can be made on any machine that has the runs.
"""
