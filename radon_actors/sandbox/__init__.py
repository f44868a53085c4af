"""Sandboxed atoms: handlers that run inside a WebAssembly component.

The boundary is the WIT package in ``wit/`` (``radon:atom``), described in
``docs/standard.md``. Modules here are private; the public names
(``SandboxConfig`` and the sandbox errors) are re-exported by ``radon_actors``.

This package is imported inside the guest (by ``_guest``): keep this file
free of host-only imports.
"""
