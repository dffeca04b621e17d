"""Moving an object between pyfleet interpreters: pickled once, storages kept aside.

Frozen into the interpreter library (stubs/freeze.py) and used by the host's
createMovable() and ReplicatedObj; importable and testable with a plain python3:

    data, storages, dtypes = dumps(model, [])
    copy = loads(data, storages, dtypes, [])   # shares every storage with `model`

Note [Moving objects between interpreters]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
An object lives in one interpreter; another interpreter gets its own copy by
unpickling. Tensor storages must not be copied, so the pickle refers to them by number
(persistent ids) and each storage travels beside it as a uint8 tensor viewing the whole
storage: a tensor crosses the host as a TensorImpl of the one LibTorch, and the copy
wraps the very same StorageImpl. Classes defined by a package are named through that
package's importers (torch.package's OrderedImporter), so the copy finds them in the
same package's importer of its own interpreter.
"""

import io

import torch
from torch.package import OrderedImporter, sys_importer
from torch.package._package_pickler import create_pickler
from torch.package._package_unpickler import PackageUnpickler


def _importer(importers):
    return OrderedImporter(*importers, sys_importer) if importers else sys_importer


def dumps(obj, importers):
    """Pickles `obj`, naming classes through `importers` (package importers) then
    sys_importer. Returns (data: bytes, storages: list of uint8 tensors viewing each
    storage, dtypes: list of dtype names such as "float32")."""
    storages = []
    dtypes = []

    def persistent_id(value):
        if isinstance(value, torch.storage.TypedStorage):
            storage, dtype = value.untyped(), value.dtype
        elif torch.is_storage(value):
            storage, dtype = value, torch.uint8
        else:
            return None
        storages.append(torch.empty(0, dtype=torch.uint8).set_(storage))
        dtypes.append(str(dtype).rpartition(".")[2])
        return ("storage", len(storages) - 1)

    buffer = io.BytesIO()
    pickler = create_pickler(buffer, _importer(importers))
    pickler.persistent_id = persistent_id
    pickler.dump(obj)
    return buffer.getvalue(), storages, dtypes


def loads(data, storages, dtypes, importers):
    """The object `dumps` pickled, its storages the very storages of `storages`."""

    def persistent_load(saved_id):
        kind, index = saved_id
        if kind != "storage":
            raise RuntimeError("pyfleet: unknown persistent id %r" % (kind,))
        return torch.storage.TypedStorage(
            wrap_storage=storages[index].storage().untyped(), dtype=getattr(torch, dtypes[index]))

    unpickler = PackageUnpickler(_importer(importers), io.BytesIO(data))
    unpickler.persistent_load = persistent_load
    return unpickler.load()
