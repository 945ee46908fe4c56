"""Datasets and DataModules for the folder layouts of ARCHITECTURE.md (one file per layout)."""
