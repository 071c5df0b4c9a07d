"""vlabench: a benchmark harness for accelerated Vision-Language-Action policies."""

__version__ = "0.1.0"
