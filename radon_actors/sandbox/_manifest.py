"""What a component says it holds, and the host-side classes built from it.

A component exports a manifest (``guest.manifest``, docs/standard.md,
*Manifest*): its atom classes, their handlers with their parameters, which
handlers can suspend and which exceptions they raise as answers. The host reads
it from a fresh instance (no atom created) and builds, for each atom class, a
*stand-in*: an :class:`~radon_actors.Atom` subclass with no code of its own,
whose handler table forwards into the component and checks a message's
arguments against the manifest's parameter lists, at the sender, as for any
atom. So a host that has only the component (a ``.wasm`` file, or a hash
another host shipped) runs its atoms without importing any of their Python.

The manifest is the guest's word, hence hostile input: it is read as a value
within limits, every name is checked (identifiers only, since parameter lists
become stub functions), counts are bounded, and it is used only to shape
tables and error messages. What it cannot do is widen what the host grants:
limits come from the host's ``SandboxConfig``, never from the manifest.
"""

from __future__ import annotations

import copyreg
import inspect
import keyword
from collections.abc import Callable
from typing import Any, cast

import wasmtime

from .._atom import Atom, HandlerSpec, Rejection, _make_checker
from .._state import StateSpec
from ._engine import LoadedComponent, engine, note_component_modules
from ._errors import SandboxError
from ._value import Limits, Reader, ValueRejected, known_class

__all__ = ["STANDARD", "AtomManifest", "Manifest", "read_manifest", "stand_in"]

STANDARD = "0.6.0"
_MAX_ATOMS = 1000
_MAX_HANDLERS = 1000
_MAX_PARAMS = 255
_KINDS = {
    "positional-only": inspect.Parameter.POSITIONAL_ONLY,
    "positional-or-keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "var-positional": inspect.Parameter.VAR_POSITIONAL,
    "keyword-only": inspect.Parameter.KEYWORD_ONLY,
    "var-keyword": inspect.Parameter.VAR_KEYWORD,
}


class HandlerManifest:
    """One handler as the manifest describes it."""

    __slots__ = ("answers", "name", "signature", "suspends")

    def __init__(
        self, name: str, signature: inspect.Signature, suspends: bool, answers: tuple[str, ...]
    ) -> None:
        self.name = name
        self.signature = signature
        self.suspends = suspends
        self.answers = answers


class AtomManifest:
    """One atom class as the manifest describes it."""

    __slots__ = ("durable_type", "handlers", "init", "name", "states")

    def __init__(
        self,
        name: str,
        init: inspect.Signature,
        handlers: dict[str, HandlerManifest],
        durable_type: str | None = None,
        states: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.name = name
        self.init = init
        self.handlers = handlers
        # The durable states the class declares, (name, version) each, and the
        # type they are stored under (since 0.5.0; docs/durability.md).
        self.durable_type = durable_type
        self.states = states


class Manifest:
    """A component's manifest: its standard version, language and atom classes."""

    __slots__ = ("atoms", "language", "standard")

    def __init__(self, standard: str, language: str, atoms: dict[str, AtomManifest]) -> None:
        self.standard = standard
        self.language = language
        self.atoms = atoms

    def atom(self, name: str) -> AtomManifest:
        """The atom class ``name`` ("module:QualName", or a bare class name
        when only one class has it)."""
        found = self.atoms.get(name)
        if found is None and ":" not in name:
            matches = [a for key, a in self.atoms.items() if key.rpartition(":")[2] == name]
            if len(matches) == 1:
                found = matches[0]
        if found is None:
            listing = ", ".join(sorted(self.atoms)) or "none"
            raise SandboxError(f"the component has no atom class {name!r} (it has: {listing})")
        return found


def _refuse_refs(_body: Any) -> Any:
    raise ValueRejected("a manifest holds no references")


def _no_classes(_name: str) -> type | None:
    return None


_reader = Reader(
    Limits(max_length=4 << 20, max_depth=8, max_items=200_000), _refuse_refs, _no_classes
)


def read_manifest(loaded: LoadedComponent) -> Manifest:
    """The manifest of ``loaded``, read once from a fresh instance (cached on it).

    Blocking (instantiates the component): call it from a worker thread in async
    code. Raises :class:`SandboxError` for a manifest that breaks the rules.
    """
    if loaded.manifest is not None:
        return loaded.manifest  # type: ignore[no-any-return]
    store = wasmtime.Store(engine())
    store.set_wasi(wasmtime.WasiConfig())
    store.set_limits(memory_size=256 * 1024 * 1024)
    store.set_fuel(1_000_000_000)
    try:
        instance = loaded.linker.instantiate(store, loaded.component)
        func = instance.get_func(store, loaded.exports["manifest"])
        if func is None:  # pragma: no cover - checked at load
            raise SandboxError("the component's manifest export is not a function")
        text = func(store)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raise SandboxError(
            f"the component of {loaded.module} failed to describe itself: {exc}"
        ) from None
    if not isinstance(text, str):
        raise SandboxError("the component's manifest is not a string")
    try:
        manifest = _parse(_reader.value(text))
    except (ValueRejected, ValueError, TypeError, KeyError) as exc:
        raise SandboxError(
            f"the component of {loaded.module} has a malformed manifest: {exc}"
        ) from None
    loaded.manifest = manifest
    note_component_modules(name.partition(":")[0] for name in manifest.atoms)
    return manifest


def _parse(raw: Any) -> Manifest:
    if type(raw) is not dict:
        raise ValueError("a manifest is a map")
    standard = raw["standard"]
    if standard != STANDARD:
        raise ValueError(f"it implements radon:atom {str(standard)[:20]}, this host {STANDARD}")
    atoms_raw = raw["atoms"]
    if type(atoms_raw) is not dict or len(atoms_raw) > _MAX_ATOMS:
        raise ValueError(f"atoms is a map of at most {_MAX_ATOMS} classes")
    atoms: dict[str, AtomManifest] = {}
    for name, body in atoms_raw.items():
        _check_class_name(name)
        handlers_raw = body["handlers"]
        if type(handlers_raw) is not list or len(handlers_raw) > _MAX_HANDLERS:
            raise ValueError(f"the handlers of {name} are a list of at most {_MAX_HANDLERS}")
        handlers: dict[str, HandlerManifest] = {}
        for h in handlers_raw:
            hname = h["name"]
            if type(hname) is not str or not hname.isidentifier() or keyword.iskeyword(hname):
                raise ValueError(f"a handler name of {name} is not an identifier")
            answers = h.get("answers", [])
            if type(answers) is not list or not all(type(a) is str for a in answers):
                raise ValueError(f"the answers of {name}.{hname} are class names")
            handlers[hname] = HandlerManifest(
                hname, _signature(h["params"]), h.get("suspends") is True, tuple(answers[:64])
            )
        durable_type, states = _states(name, body)
        atoms[name] = AtomManifest(name, _signature(body["init"]), handlers, durable_type, states)
    language = raw.get("language")
    return Manifest(STANDARD, language if type(language) is str else "", atoms)


_MAX_STATES = 64
_MAX_NAME = 256


def _states(name: str, body: Any) -> tuple[str | None, tuple[tuple[str, int], ...]]:
    """An atom class's durable type and declared states, [name, version] each."""
    raw = body.get("states", [])
    if type(raw) is not list or len(raw) > _MAX_STATES:
        raise ValueError(f"the states of {name} are a list of at most {_MAX_STATES}")
    states: list[tuple[str, int]] = []
    for entry in raw:
        if (
            type(entry) is not list
            or len(entry) != 2
            or type(entry[0]) is not str
            or not 0 < len(entry[0]) <= _MAX_NAME
            or type(entry[1]) is not int
            or entry[1] < 1
        ):
            raise ValueError(f"a state of {name} is [name, version]")
        states.append((entry[0], entry[1]))
    durable_type = body.get("durable-type")
    if not states:
        return None, ()
    if type(durable_type) is not str or not 0 < len(durable_type) <= _MAX_NAME:
        raise ValueError(f"{name} declares states, and so a durable-type (a name)")
    return durable_type, tuple(states)


def _check_class_name(name: str) -> None:
    module, sep, qualname = name.partition(":")
    parts = [*module.split("."), *qualname.split(".")]
    if not sep or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        raise ValueError(f"{name[:80]!r} is not a class name (module:QualName)")


def _signature(raw: Any) -> inspect.Signature:
    """A signature from the manifest's parameter list (checked by inspect:
    names must be identifiers, kinds in order, no duplicates)."""
    if type(raw) is not list or len(raw) > _MAX_PARAMS:
        raise ValueError(f"a parameter list has at most {_MAX_PARAMS} entries")
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for entry in raw:
        if type(entry) is not list or len(entry) != 3:
            raise ValueError("a parameter is [name, kind, has default]")
        pname, kind, has_default = entry
        if type(pname) is not str or pname == "self" or kind not in _KINDS:
            raise ValueError(f"a malformed parameter {str(pname)[:40]!r}")
        default = _Default if has_default is True else inspect.Parameter.empty
        if _KINDS[kind] in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(pname, _KINDS[kind], default=default))
    return inspect.Signature(params)


class _DefaultType:
    def __repr__(self) -> str:
        return "..."


_Default = _DefaultType()


# ----------------------------------------------------------------------
# Stand-in classes
# ----------------------------------------------------------------------
class ComponentAtom(type):
    """The metaclass of stand-ins: a class that is a component's atom class by
    name. It pickles as that name and the component's hash, never as a module
    to import (placement sends it by hash; see ``placement._code``)."""

    _radon_component: tuple[LoadedComponent, str]


def _reduce_stand_in(cls: ComponentAtom) -> Any:
    raise TypeError(
        f"{cls.__qualname__} is an atom class of a WebAssembly component, known here only "
        "by its manifest: it crosses between hosts as its component's hash"
    )


copyreg.pickle(ComponentAtom, _reduce_stand_in)

# Stand-ins by (component key, class name): one class object per atom class of
# each loaded component (as many as the components' manifests name, bounded by
# the components this process loaded).
_stand_ins: dict[tuple[str, str], type[Atom]] = {}


def stand_in(loaded: LoadedComponent, name: str) -> type[Atom]:
    """The stand-in class of atom class ``name`` in ``loaded`` (its manifest
    must have been read: :func:`read_manifest`)."""
    manifest: Manifest = loaded.manifest
    atom = manifest.atom(name)
    key = (loaded.key, atom.name)
    cached = _stand_ins.get(key)
    if cached is not None:
        return cached
    module, _, qualname = atom.name.partition(":")
    namespace: dict[str, Any] = {
        "__module__": module,
        "__qualname__": qualname,
        "__doc__": f"Atom class {atom.name} of a WebAssembly component (a stand-in).",
        "_radon_component": (loaded, atom.name),
        # Runs in its sandbox wherever a class is spawned without saying how (an
        # on-demand activation, ``system.spawn(cls)``): the default limits.
        "sandbox": True,
        "__init__": _signed(_init, "__init__", atom.init),
    }
    if atom.states:
        # What the host needs of its durable states: their names, and the type
        # the component stores them under (docs/sandbox.md, threat model).
        namespace["durable_type"] = atom.durable_type
        namespace["_radon_states"] = tuple(
            StateSpec(_no_factory, name=n, version=v, upgrade=None) for n, v in atom.states
        )
    cls = cast("type[Atom]", ComponentAtom(qualname.rpartition(".")[2], (Atom,), namespace))
    table: dict[Any, HandlerSpec] = {}
    for h in atom.handlers.values():
        spec = HandlerSpec.__new__(HandlerSpec)
        spec.owner = cls
        spec.name = h.name
        spec.fn = _signed(_handler_stub, h.name, h.signature, qualname)
        answers = [known_class(a) for a in h.answers]
        spec.answers = (
            Rejection,
            *(a for a in answers if a is not None and issubclass(a, Exception)),
        )
        spec.is_async = h.suspends
        spec.never_suspends = not h.suspends
        spec.check = _make_checker(h.name, spec.fn)
        table[h.name] = spec
    cls._radon_handlers = table  # type: ignore[attr-defined]
    _stand_ins[key] = cls
    return cls


def _no_factory() -> Any:  # pragma: no cover - never run
    raise SandboxError("a component's state is built in its sandbox, never natively")


def _init(self: Any, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - never run
    raise SandboxError("a component's atom runs in its sandbox, never as a native instance")


def _handler_stub(self: Any, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
    raise SandboxError("a component's handler runs in its sandbox, never natively")


def _signed(
    fn: Callable[..., Any], name: str, signature: inspect.Signature, owner: str = ""
) -> Callable[..., Any]:
    def stub(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    stub.__name__ = name
    stub.__qualname__ = f"{owner}.{name}" if owner else name
    stub.__signature__ = signature  # type: ignore[attr-defined]
    return stub


def is_stand_in(cls: type[Any]) -> bool:
    """Whether ``cls`` is a component's atom class known only by its manifest."""
    return isinstance(cls, ComponentAtom)
