"""Accounts kept by a cluster of ``radon member`` processes (docs/cluster.md).

    python -m examples.cluster [--members N] [--keys K] [--lease SECONDS] [--store URL]

Starts N members of a cluster on one store, deposits into K accounts through
a client of the cluster (each account is active in one member), SIGKILLs the
member with the most accounts, deposits again, and checks that every account
answered from a live member with every acknowledged deposit in its balance.
"""
