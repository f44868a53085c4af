"""Benchmarking atoms: your own handlers, and the shipped latency suite.

Measure one of your handlers natively, sandboxed and on a worker host, beside
the raw trio floor, in one run::

    from radon_actors import bench
    from myapp.atoms import Counter

    report = bench.run(Counter, Counter.incr, args=(1,),
                       deployments=("native", "sandboxed", "worker"))
    print(report.table())

(``await bench.measure(...)`` inside trio.) The command line does the same:
``radon bench myapp.atoms:Counter incr 1 --deploy native,sandboxed,worker``;
``radon bench --suite`` runs the latency suite (echo atoms in every deployment,
raw trio and TCP floors, and the peer frameworks that are installed). See
docs/benchmarks.md, "Benchmarking your own atoms".
"""

from __future__ import annotations

from ._measure import DEPLOYMENTS, Measurement, Report, measure, run

__all__ = ["DEPLOYMENTS", "Measurement", "Report", "measure", "run"]
