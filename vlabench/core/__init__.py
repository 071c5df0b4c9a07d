"""The core every layer imports: the plugin registry, the config accessors, the contracts
between policies, pruners and suites, the record schema and the one error type of bad input.

Small and cheap on purpose: nothing here imports torch, a simulator or Hydra at import time.
"""
