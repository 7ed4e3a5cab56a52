"""The command line (``python -m kling_api``): commands, progress on a terminal, batch manifests."""
