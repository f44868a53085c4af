"""A JavaScript atom inside a Python pipeline: ``python -m examples.polyglot``."""
