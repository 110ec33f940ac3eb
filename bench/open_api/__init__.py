"""The open-API benchmark suite (``python -m bench.open_api``): scenarios, data, row check."""
