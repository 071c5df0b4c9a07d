"""`vlabench report` and `vlabench compare`: run directories -> the papers' tables, statistics,
plots and a regression verdict. The report reads records only (data flows one way).

  runs.py        find, load and validate run directories (RunSet)
  cells.py       per-(run, column) metrics against the vanilla run: the statistics glue
  grid.py        a paper-shaped table before rendering (ours, paper and Δ rows)
  layouts.py     the papers' table layouts (SpecPrune-VLA 1-4, VLA-Pruner 1, 2, 4, SP-VLA 1, 3) and LAYOUTS
  tables_vp.py   VLA-Pruner Tables 3, 5, 6 (baselines, memory / CUDA time, layer K)
  tables_sp.py   SP-VLA Tables 2 and 6-11 (modules, Hz, sensitivity, settings)
  settings.py    which config keys make which paper row (ablations, K, sensitivity moves)
  runstable.py   the statistics tables (every run; mean speedup per method)
  reference.py   the published numbers of results/reference/*.csv, beside ours
  render.py      Table (display cells + numbers) -> markdown / HTML fragment
  latex.py       LaTeX that pdflatex compiles (booktabs, amssymb, graphicx)
  notes.py       report-wide footnotes (one number per note in every table)
  tidy.py        tidy long CSV and JSON with provenance
  plots.py       matplotlib figures (PNG + SVG)
  labels.py      suites in the papers' order and names; short task names
  figstyle.py    figures' shared look: marker per method, colour per retention, captions saved in PNG/SVG
  pngmeta.py     a PNG's size and text chunks (the HTML page reads captions from them)
  html.py        one self-contained HTML page
  build.py       the `report` command's pipeline
  compare.py     the `compare` regression gate
"""
