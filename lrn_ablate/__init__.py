"""lrn-ablate: measure what local response normalization does against BatchNorm and its relatives."""

__version__ = "0.1.0"
