"""The command-line entry points (`vlabench run|plan|merge|report|compare|bench|list|selftest`):
thin commands over the layers below; `cli.main` is the console script.
"""
