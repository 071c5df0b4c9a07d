"""A privileged-state oracle for LIBERO: scripted pick-and-place from simulator poses.

It reads object poses through `Observation.privileged` (the suite's separate channel, given
only to policies that declare `needs: [privileged]`), so it proves the simulator install and
the protocol, not a model. geometry.py measures bodies and regions, planner.py turns a task's
goal into grasp/place targets, policy.py runs the state machine. Import-light on purpose.
"""
