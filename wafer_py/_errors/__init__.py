"""The exception ladder, in wings: import every name from :mod:`wafer_py.exceptions`."""
