"""azrlib: a reproducible re-implementation of the Absolute Zero Reasoner (AZR) and the analyses of
"Towards Understanding Self-play for LLM Reasoning".

Layers, each importing only the ones before it (tests/test_layers.py checks every import):
sandbox -> tasks (with rewards and the tiny world) -> rollout (with models) -> trainer ->
metrics/eval -> report -> pipeline -> cli. README.md draws the map.
"""

__version__ = "0.1.0"
