"""Many runs: composing run configs from overrides, sweeps and paper-table presets, the job
list, the local / Ray / SLURM (submitit) launchers and `plan` (what a command would run).
"""
