"""The radon-actors benchmark suite: ``python -m bench`` (see docs/benchmarks.md).

* the latency suite: message latency and throughput of radon-actors, raw
  baselines (trio memory channel, trio loopback TCP, asyncio.Queue) and peer
  frameworks (pykka, Thespian, xoscar), in one run on one machine. It ships
  with the package (:mod:`radon_actors.bench`, ``radon bench --suite``);
  ``bench/latency.py`` runs it from here too;
* :mod:`bench.savina`: the Savina actor benchmarks on radon-actors and pykka.

Peers come from the ``bench`` extra: ``pip install -e ".[bench]"``.
"""
