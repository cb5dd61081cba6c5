"""Fusion training: examples with both modes' teachers, a collator, and the phased loop."""
