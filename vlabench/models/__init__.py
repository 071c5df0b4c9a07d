"""VLA policy adapters (OpenVLA, OpenVLA-OFT) on one shared, prunable decoder loop.

Everything here imports torch; `vlabench` itself must not import this package at import time.
"""

from vlabench.models import torchvision_guard as _torchvision_guard

_torchvision_guard.install()   # a broken torchvision must not break transformers (see the module)
