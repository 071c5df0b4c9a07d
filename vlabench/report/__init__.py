"""`vlabench report` and `vlabench compare`: run directories -> the papers' tables, statistics,
plots and a regression verdict. The report reads records only (data flows one way).

  runs.py        find, load and validate run directories (RunSet)
  cells.py       per-(run, column) metrics against the vanilla run: the statistics glue
  grid.py        a paper-shaped table before rendering (ours, paper and Δ rows)
  layouts.py     the papers' table layouts (SpecPrune-VLA 1-3, VLA-Pruner 1-2, SP-VLA 1, 3)
  runstable.py   the statistics tables (every run; mean speedup per method)
  reference.py   the published numbers of results/reference/*.csv, beside ours
  render.py      Table -> markdown / LaTeX / CSV / HTML fragment
  plots.py       matplotlib figures (PNG + SVG)
  html.py        one self-contained HTML page
  build.py       the `report` command's pipeline
  compare.py     the `compare` regression gate
"""
