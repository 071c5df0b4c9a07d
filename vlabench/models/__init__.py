"""VLA policy adapters (OpenVLA, OpenVLA-OFT) on one shared, prunable decoder loop.

Everything here imports torch; `vlabench` itself must not import this package at import time.
"""
