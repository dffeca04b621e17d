"""pyfleet-inspect against torch: the tree byte-for-byte as str(file_structure(...)),
--json fields as torch's importer and a Python unpickler see them, bad input.

The binary comes from $PYFLEET_INSPECT (ctest sets it to the built pyfleet-inspect).
"""
import json
import os
import pickle
import re
import subprocess

import pytest
from torch.package import GlobGroup

import fixture_spec as spec
import gen_broken_packages
from conftest import STOCK

GLOBS = [
    ([], []),
    (["**"], []),
    (["pf_demo/**"], []),
    (["pf_demo/util/*", "**/*.txt"], []),
    ([], ["**/*.storage"]),
    (["**"], [".data/**", "**/__init__.py"]),
    (["*"], []),
    (["pf_*/**/*.py"], ["**/m0*"]),
    (["nothing/matches"], []),
    ([".data/ts_code/**"], ["**/*.debug_pkl"]),
    (["**/*.pkl"], []),
]
FIXTURES = [spec.FEATURES, spec.FEATURES_DIR, spec.FEATURES_DEFLATED, spec.FEATURES_NO_PYVER,
            spec.SCRIPT, spec.FX, spec.MANY, spec.SMALL]
BROKEN_PICKLE_FIXTURES = {spec.FEATURES, spec.FEATURES_DIR, spec.FEATURES_DEFLATED, spec.FEATURES_NO_PYVER}


def inspect_bin():
    path = os.environ.get("PYFLEET_INSPECT")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"$PYFLEET_INSPECT={path!r} is not an executable (build pyfleet_inspect)", pytrace=False)
    return path


def run(*args):
    return subprocess.run([inspect_bin(), *args], capture_output=True, timeout=120)


def glob_args(include, exclude):
    out = []
    for g in include:
        out += ["--include", g]
    for g in exclude:
        out += [f"--exclude={g}"]
    return out


def stock_tree(path, include, exclude):
    kwargs = {"include": include} if include else {}
    if exclude:
        kwargs["exclude"] = exclude
    return str(STOCK(path).file_structure(**kwargs))


@pytest.mark.parametrize("include,exclude", GLOBS, ids=[repr(g) for g in GLOBS])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_tree_text_is_byte_identical(fixture, include, exclude):
    path = spec.fixture_path(fixture)
    proc = run(path, *glob_args(include, exclude))
    # 3: the feature packages hold deliberately broken pickles (garbage.pkl, truncated.pkl).
    assert proc.returncode == (3 if fixture in BROKEN_PICKLE_FIXTURES else 0), proc.stderr.decode()
    expected = stock_tree(path, include, exclude).encode("utf-8")
    assert proc.stdout[: len(expected)] == expected
    assert proc.stdout[len(expected):].startswith(b"version: ")


def test_tree_of_torch_bc_packages():
    root = os.environ.get("PYFLEET_TORCH_TEST_DIR", "")
    bc = os.path.join(root, "package", "package_bc")
    if not os.path.isdir(bc):
        pytest.fail(f"{bc} missing: set PYFLEET_TORCH_TEST_DIR", pytrace=False)
    for name in sorted(os.listdir(bc)):
        path = os.path.join(bc, name)
        proc = run(path, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        assert json.loads(proc.stdout)["tree"] == str(STOCK(path).file_structure())


class _Anything:
    """Stands in for every global so a pickle can be walked without its classes."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def add(self, item):
        pass


class _RecordingUnpickler(pickle._Unpickler):
    """Python's own unpickler, recording the module of every global it is asked for."""

    def __init__(self, data):
        import io

        super().__init__(io.BytesIO(data))
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return _Anything

    def persistent_load(self, pid):
        return _Anything()


def oracle_pickle_modules(data):
    u = _RecordingUnpickler(data)
    u.load()
    return sorted(u.modules)


def expected_json(path):
    imp = STOCK(path)
    reader = imp.zip_reader
    records = reader.get_all_records()
    storages = [r for r in records if re.fullmatch(r"\.data/[^/]+\.storage", r)]
    pickles, errors = {}, []
    for r in records:
        if r.endswith(".pkl"):
            try:
                pickles[r] = oracle_pickle_modules(reader.get_record(r))
            except Exception:  # noqa: BLE001 - the tool must report these as errors
                errors.append(r)
    return {
        "files": list(records),
        "tree": str(imp.file_structure()),
        "version": int(reader.get_record(".data/version").decode()) if reader.has_record(".data/version") else None,
        "python_version": imp.python_version(),
        "extern_modules": imp.extern_modules,
        "storages": {"count": len(storages), "bytes": sum(len(reader.get_record(r)) for r in storages)},
        "pickles": pickles,
        "pickle_errors": sorted(errors),
    }


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if f != spec.FEATURES_DIR])
def test_json_fields_match_torch(fixture):
    path = spec.fixture_path(fixture)
    proc = run(path, "--json")
    want = expected_json(path)
    assert proc.returncode == (3 if want["pickle_errors"] else 0), proc.stderr.decode()
    got = json.loads(proc.stdout)
    assert got["files"] == want["files"]
    assert got["tree"] == want["tree"]
    assert got["version"] == want["version"] == 6
    assert got["python_version"] == want["python_version"]
    assert got["extern_modules"] == want["extern_modules"]
    assert got["storages"] == want["storages"]
    assert got["pickles"] == want["pickles"]
    assert sorted(got["pickle_errors"]) == want["pickle_errors"]
    assert all(got["pickle_errors"].values())


def test_json_of_directory_package_matches_zip():
    zipped = json.loads(run(spec.fixture_path(spec.FEATURES), "--json").stdout)
    directory = json.loads(run(spec.fixture_path(spec.FEATURES_DIR), "--json").stdout)
    for key in ("version", "python_version", "extern_modules", "storages", "pickles", "pickle_errors"):
        assert directory[key] == zipped[key], key
    # Like torch's DirectoryReader, the listing skips dot-names (.data/...).
    assert sorted(directory["files"]) == sorted(f for f in zipped["files"] if not f.startswith("."))
    dir_path = spec.fixture_path(spec.FEATURES_DIR)
    assert sorted(directory["files"]) == sorted(STOCK(dir_path).zip_reader.get_all_records())


def test_json_files_honour_globs():
    path = spec.fixture_path(spec.FEATURES)
    got = json.loads(run(path, "--json", "--include", "pf_demo/**", "--exclude", "**/*.pkl").stdout)
    group = GlobGroup("pf_demo/**", exclude="**/*.pkl", separator="/")
    assert got["files"] == [r for r in STOCK(path).zip_reader.get_all_records() if group.matches(r)]
    assert got["tree"] == str(STOCK(path).file_structure(include="pf_demo/**", exclude="**/*.pkl"))


def test_text_output_lists_metadata():
    path = spec.fixture_path(spec.SCRIPT)
    text = run(path).stdout.decode()
    want = expected_json(path)
    assert "\nversion: 6\n" in text
    assert f"\npython_version: {want['python_version']}\n" in text
    assert f"\nextern_modules: {len(want['extern_modules'])}\n" in text
    assert f"\nstorages: {want['storages']['count']} records, {want['storages']['bytes']} bytes\n" in text
    for record, modules in want["pickles"].items():
        assert f"\n  {record}: {' '.join(modules)}\n" in text


def test_python_version_absent_prints_none():
    path = spec.fixture_path(spec.FEATURES_NO_PYVER)
    assert json.loads(run(path, "--json").stdout)["python_version"] is None
    assert "\npython_version: None\n" in run(path).stdout.decode()


@pytest.mark.parametrize("case", gen_broken_packages.CASES)
def test_broken_archive_gives_clear_error_or_report(case):
    path = spec.fixture_path(spec.BROKEN_DIR, case + ".pt")
    proc = run(path, "--json")
    assert proc.returncode >= 0, f"pyfleet-inspect crashed (signal {-proc.returncode})"
    try:
        STOCK(path)
        stock_error = None
    except Exception as e:  # noqa: BLE001
        stock_error = e
    if isinstance(stock_error, RuntimeError):  # the archive itself is unreadable for torch
        assert proc.returncode == 1, f"stock refuses {case}, inspect exited {proc.returncode}"
    if proc.returncode == 1:
        err = proc.stderr.decode()
        assert err.startswith("pyfleet-inspect: ") and path in err, err
        assert proc.stdout == b""
    else:
        json.loads(proc.stdout)


def test_missing_file_is_an_error():
    proc = run("/nonexistent/pf.pt")
    assert proc.returncode == 1 and b"/nonexistent/pf.pt" in proc.stderr


@pytest.mark.parametrize("args,message", [
    ([], b"no PACKAGE"),
    (["a.pt", "b.pt"], b"more than one PACKAGE"),
    (["--bogus"], b"unknown option"),
    (["x.pt", "--include"], b"needs a GLOB"),
    (["x.pt", "--include", "a/b**"], b"** can only appear as an entire path segment"),
])
def test_bad_usage_exits_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_help_exits_0():
    proc = run("--help")
    assert proc.returncode == 0 and b"Usage: pyfleet-inspect" in proc.stdout and b"--include GLOB" in proc.stdout
