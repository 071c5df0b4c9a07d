"""`python -m vlabench ...` is the `vlabench` command."""

from vlabench.commands.cli import main

if __name__ == "__main__":
    main()
