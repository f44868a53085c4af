"""The in-process runtime: atom cells, the system nursery, timers and the directory.

Layering: the public API (``Atom``, ``Ref``) calls into this package, which
drives the ``mailbox`` layer below it.
"""

from ._cell import AtomCell, Directive
from ._system import System, open_system

__all__ = ["AtomCell", "Directive", "System", "open_system"]
