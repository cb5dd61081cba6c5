"""Curating the fusion set: which rows of a larger candidate pool the fusion trains on."""
