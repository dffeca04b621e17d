"""Compares what two importers produced: values, tensors, modules, exceptions.

Names differ only in the mangle index (`<torch_package_3>.pf_demo` vs
`<torch_package_4>.pf_demo`), so strings are compared after `normalize`. Object graphs are
compared structurally AND by identity pattern: if the reference graph holds one object in two
places, the other graph must too (e.g. a tensor pickled twice, a reduce_package result).

    ref = outcome(lambda: stock.load_pickle("p", "x.pkl"))
    got = outcome(lambda: mine.load_pickle("p", "x.pkl"))
    assert_same_outcome(ref, got)
"""
import dataclasses
import re
import types

import torch
from torch.package._mangling import demangle, is_mangled

_MANGLE = re.compile(r"<torch_package_\d+>")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# Names the two importer classes print as in reprs.
_IMPORTER_REPRS = re.compile(r"<(?:torch\.package\.package_importer|pyfleet)\.PackageImporter object")


def normalize(text):
    """Text with mangle indices, object addresses and importer class names made uniform."""
    text = _MANGLE.sub("<torch_package_N>", text)
    text = _IMPORTER_REPRS.sub("<PackageImporter object", text)
    return _ADDRESS.sub(" at 0x?", text)


@dataclasses.dataclass
class Outcome:
    value: object = None
    error: BaseException = None

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        if self.ok:
            return f"Outcome(value={self.value!r:.200})"
        return f"Outcome(error={type(self.error).__name__}: {str(self.error)[:300]})"


def outcome(fn):
    """Runs fn(); returns its value or the Exception it raised (never a BaseException)."""
    try:
        return Outcome(value=fn())
    except Exception as e:  # noqa: BLE001 - every failure is compared
        return Outcome(error=e)


def assert_same_exception(ref, got):
    assert type(got) is type(ref), (
        f"exception type differs: stock {type(ref).__name__}: {ref} | got {type(got).__name__}: {got}"
    )
    assert normalize(str(got)) == normalize(str(ref)), (
        f"exception message differs:\n stock: {ref}\n   got: {got}"
    )
    if isinstance(ref, ImportError):
        assert got.name == ref.name, f"ImportError.name: stock {ref.name!r} got {got.name!r}"


def assert_same_outcome(ref, got, compare=None):
    """Both raised the same exception, or both returned equal values (compare(ref, got))."""
    if not ref.ok:
        assert not got.ok, f"stock raised {type(ref.error).__name__}: {ref.error}; got value {got.value!r:.300}"
        assert_same_exception(ref.error, got.error)
        return
    if not got.ok:
        raise AssertionError(f"stock returned a value, got raised {type(got.error).__name__}: {got.error}") from got.error
    (compare or assert_same_value)(ref.value, got.value)


def qualified_name(obj):
    """module.qualname of a class or function, module demangled."""
    return f"{demangle(getattr(obj, '__module__', '') or '')}.{getattr(obj, '__qualname__', '?')}"


def from_package(obj):
    module = getattr(obj, "__module__", None)
    return isinstance(module, str) and is_mangled(module)


def all_tensors(obj, out=None, seen=None):
    """Every torch.Tensor reachable through containers, __dict__s and module state."""
    out = [] if out is None else out
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, torch.jit.ScriptModule):
        for t in obj.state_dict().values():
            all_tensors(t, out, seen)
    elif isinstance(obj, dict):
        for v in obj.values():
            all_tensors(v, out, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            all_tensors(v, out, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        all_tensors(vars(obj), out, seen)
    return out


def storage_key(t):
    if t.is_sparse or t.is_quantized:
        return None
    return t.storage().data_ptr() if t.storage().size() else None


def assert_same_storage_sharing(ref, got):
    """Tensors that share a storage in `ref` share one in `got`, and no others do."""
    rt, gt = all_tensors(ref), all_tensors(got)
    assert len(rt) == len(gt), f"{len(rt)} tensors in stock's result, {len(gt)} in got's"
    rk = [storage_key(t) for t in rt]
    gk = [storage_key(t) for t in gt]
    for i in range(len(rt)):
        for j in range(i + 1, len(rt)):
            if rk[i] is None or rk[j] is None:
                continue
            assert (rk[i] == rk[j]) == (gk[i] == gk[j]), (
                f"tensors {i} and {j}: share a storage in stock: {rk[i] == rk[j]}, in got: {gk[i] == gk[j]}"
            )


def assert_same_tensor(a, b, path):
    assert type(b) is type(a), f"{path}: {type(a)} vs {type(b)}"
    for attr in ("dtype", "shape", "layout", "device", "requires_grad", "is_quantized"):
        assert getattr(b, attr) == getattr(a, attr), f"{path}.{attr}: {getattr(a, attr)} vs {getattr(b, attr)}"
    if a.is_sparse:
        assert torch.equal(a._indices(), b._indices()), f"{path}: sparse indices differ"
        assert torch.equal(a._values(), b._values()), f"{path}: sparse values differ"
        return
    if a.is_quantized:
        assert (a.q_scale(), a.q_zero_point()) == (b.q_scale(), b.q_zero_point()), f"{path}: qparams"
        assert torch.equal(a.int_repr(), b.int_repr()), f"{path}: quantized values differ"
        return
    assert b.stride() == a.stride(), f"{path}: stride {a.stride()} vs {b.stride()}"
    assert b.storage_offset() == a.storage_offset(), f"{path}: storage_offset"
    assert b.storage().nbytes() == a.storage().nbytes(), f"{path}: storage size"
    # Bitwise: compare the bytes of the whole storage, not just the visible elements.
    sa = torch.tensor([], dtype=torch.uint8).set_(a.storage().untyped() if hasattr(a.storage(), "untyped") else a.storage()._storage)
    sb = torch.tensor([], dtype=torch.uint8).set_(b.storage().untyped() if hasattr(b.storage(), "untyped") else b.storage()._storage)
    assert torch.equal(sa, sb), f"{path}: storage bytes differ"


def assert_same_value(ref, got, path="$", memo=None):
    """Structural + identity-pattern equality of two object graphs (see module comment)."""
    memo = {} if memo is None else memo
    if id(ref) in memo:
        assert memo[id(ref)] is got, f"{path}: stock reuses one object here, got has a different one"
        return
    memo[id(ref)] = got
    if isinstance(ref, str):  # may name a module: compare with the mangle index normalized
        assert type(got) is str and normalize(got) == normalize(ref), f"{path}: {ref!r:.200} vs {got!r:.200}"
        return
    if ref is None or isinstance(ref, (bool, int, float, complex, bytes, bytearray)):
        assert type(got) is type(ref) and got == ref, f"{path}: {ref!r:.200} vs {got!r:.200}"
        return
    if isinstance(ref, torch.Tensor):
        assert_same_tensor(ref, got, path)
        return
    if isinstance(ref, (torch.dtype, torch.device, torch.Size, torch.layout, torch.memory_format)):
        assert got == ref, f"{path}: {ref} vs {got}"
        return
    if isinstance(ref, torch.jit.ScriptModule):
        assert_same_script_module(ref, got, path)
        return
    if isinstance(ref, types.ModuleType):
        assert isinstance(got, types.ModuleType), f"{path}: module vs {type(got)}"
        assert demangle(got.__name__) == demangle(ref.__name__), f"{path}: {ref.__name__} vs {got.__name__}"
        if not is_mangled(ref.__name__):
            assert got is ref, f"{path}: extern module {ref.__name__} is not the sys.modules object"
        return
    if isinstance(ref, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        if not from_package(ref):
            assert got is ref, f"{path}: {qualified_name(ref)} from outside the package must be the same object"
            return
        assert type(got) is type(ref) or isinstance(ref, type), f"{path}: {type(ref)} vs {type(got)}"
        assert from_package(got), f"{path}: {qualified_name(got)} should come from the package"
        assert qualified_name(got) == qualified_name(ref), f"{path}: {qualified_name(ref)} vs {qualified_name(got)}"
        if isinstance(ref, types.FunctionType):
            assert got.__code__.co_code == ref.__code__.co_code, f"{path}: function bytecode differs"
        return
    if isinstance(ref, dict):
        assert isinstance(got, dict) and qualified_name(type(got)) == qualified_name(type(ref)), f"{path}: {type(ref)} vs {type(got)}"
        assert list(got.keys()) == list(ref.keys()), f"{path}: keys {list(ref)} vs {list(got)}"
        for k in ref:
            assert_same_value(ref[k], got[k], f"{path}[{k!r}]", memo)
        return
    if isinstance(ref, (list, tuple)):
        assert qualified_name(type(got)) == qualified_name(type(ref)), f"{path}: {type(ref)} vs {type(got)}"
        assert len(got) == len(ref), f"{path}: length {len(ref)} vs {len(got)}"
        for i, (r, g) in enumerate(zip(ref, got)):
            assert_same_value(r, g, f"{path}[{i}]", memo)
        return
    if isinstance(ref, (set, frozenset)):
        assert type(got) is type(ref) and got == ref, f"{path}: {ref} vs {got}"
        return
    # Any other object: same (demangled) class, same state.
    assert qualified_name(type(got)) == qualified_name(type(ref)), (
        f"{path}: type {qualified_name(type(ref))} vs {qualified_name(type(got))}"
    )
    assert from_package(type(got)) == from_package(type(ref)), f"{path}: packaged class vs not"
    if not from_package(type(ref)):
        assert type(got) is type(ref), f"{path}: {type(ref)} is not the same class object"
    if hasattr(ref, "__dict__"):
        assert_same_value(vars(ref), vars(got), f"{path}.__dict__", memo)
    elif hasattr(ref, "__getstate__"):
        assert_same_value(ref.__getstate__(), got.__getstate__(), f"{path}.__getstate__()", memo)


def assert_same_script_module(ref, got, path):
    assert isinstance(got, torch.jit.ScriptModule), f"{path}: {type(got)} is not a ScriptModule"
    assert got.original_name == ref.original_name, f"{path}: {ref.original_name} vs {got.original_name}"
    assert normalize(got.code) == normalize(ref.code), f"{path}: TorchScript code differs"
    rs, gs = ref.state_dict(), got.state_dict()
    assert list(gs) == list(rs), f"{path}: state_dict keys"
    for k in rs:
        assert_same_tensor(rs[k], gs[k], f"{path}.state_dict()[{k!r}]")


def module_summary(module):
    """What a packaged module exposes, with importer-specific parts normalized."""
    ns = vars(module)
    out = {}
    for key in sorted(ns):
        v = ns[key]
        if key == "__builtins__":
            out[key] = sorted(v) if isinstance(v, dict) else type(v).__name__
        elif key in ("__loader__",):
            out[key] = "<importer>"
        elif key == "__spec__":
            out[key] = (v.name, v.origin, v.submodule_search_locations, v.has_location, v.cached, v.parent)
        elif isinstance(v, str):
            out[key] = normalize(v)
        elif isinstance(v, types.ModuleType):
            out[key] = ("module", normalize(v.__name__))
        elif isinstance(v, (type, types.FunctionType)):
            out[key] = (type(v).__name__, normalize(f"{v.__module__}.{v.__qualname__}"))
        elif isinstance(v, (int, float, bool, type(None), tuple, list, dict, frozenset)):
            out[key] = normalize(repr(v))
        else:
            out[key] = type(v).__name__
    return out
