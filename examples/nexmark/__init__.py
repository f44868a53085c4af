"""The Nexmark streaming benchmark on atoms: ``python -m examples.nexmark``."""
