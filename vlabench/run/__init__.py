"""One run: the episode loop, the simulator worker processes that share one policy, and what
surrounds the loop (stopping on signals, progress, videos, trackers, the simulator log).

Entry point: `vlabench.run.runner.run_from_config(cfg)` with a composed config.
"""
