"""The shared vocabulary of every layer: labels, windowing and the model's input, geometry.

Imports neither Qt nor TensorFlow.
"""
