"""The run directory and its records: crash-safe record files, the directory's claim and lock,
resume, run names and keys, provenance, shards, merging and read-back verification.

Everything that writes or checks what a paper's table is made from lives here; the run loop
(vlabench.run) and the report (vlabench.report) only go through it.
"""
