"""profuser: progressive fusion of heterogeneous large language models."""

# Import torch before anything that may load another OpenMP runtime: sentencepiece's
# wheel bundles its own libgomp, and when that one is loaded first torch's CPU kernels
# run up to ten times slower (two runtimes' threads spinning against each other).
import torch  # noqa: F401

__version__ = "0.1.0"
