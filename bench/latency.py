"""``python bench/latency.py``: the latency suite, which now ships with the package.

The suite lives in :mod:`radon_actors.bench._suite` and runs as
``radon bench --suite`` wherever radon-actors is installed; this file keeps the
repository's old command line working (same options).
"""

from __future__ import annotations

from radon_actors.bench._suite import main

if __name__ == "__main__":
    main()
