"""The repository's scripts, run as modules from its root (``python -m scripts.demo``) so that they import
``kling_devtools`` and ``kling_api`` without touching sys.path."""
