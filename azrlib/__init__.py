"""azrlib: a reproducible re-implementation of the Absolute Zero Reasoner (AZR) and the analyses of
"Towards Understanding Self-play for LLM Reasoning".

Layers (imports only go downwards): sandbox -> tasks -> rewards -> rollout -> trainer; metrics and
eval read what the trainer writes. See README.md for the map.
"""

__version__ = "0.1.0"
