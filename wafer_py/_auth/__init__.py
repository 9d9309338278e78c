"""WaferAuth's parts, one idea a module: import every name from :mod:`wafer_py.auth`."""
