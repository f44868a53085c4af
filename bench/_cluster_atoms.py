"""The atom ``bench/cluster.py`` measures (a module of its own, so that the
``radon member`` processes import it by name)."""

from __future__ import annotations

import os

from radon_actors import Atom, handler


class Echo(Atom):
    """An on-demand atom that answers at once, and says where it runs."""

    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    def pid(self) -> int:
        return os.getpid()
