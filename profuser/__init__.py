"""profuser: progressive fusion of heterogeneous large language models."""

__version__ = "0.1.0"
