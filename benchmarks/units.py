"""Byte units, for every module of the benchmark (the page-cache writer included: standard library only)."""
MB = 1024 * 1024
GIB = 1024 ** 3
