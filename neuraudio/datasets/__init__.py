"""Readers of the folder layouts of docs/architecture.md (one file per layout): plain torch Datasets, no Lightning.

Evaluation (``neuraudio eval``), the command line and training all read user folders through these.
"""
