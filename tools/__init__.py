"""Command-line tools (run as scripts: python tools/NAME.py)."""
