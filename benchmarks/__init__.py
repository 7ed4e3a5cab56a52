"""Benchmarks of what the pack costs around Kling's servers: decoding, encoding, waiting, batches.

Run ``python -m benchmarks`` (or ``bash benchmarks/run.sh``); see ``benchmarks/run.py``.
"""
