"""pyfleet's security guards from Debian's python3, through the pyfleet extension module
(the same C++ importer every pyfleet interpreter has built in), on packages written by the
stock exporter (make_security_packages.py, in $PYFLEET_SECURITY_PACKAGES):

  * integrity pinning: PackageImporter(path_or_file, sha256=...), pyfleet-inspect --sha256;
  * safe unpickling: load_pickle(..., safe=True, allowed_globals=...);
  * the security policy: install_security_policy(...). A policy is permanent and, in
    python3, process-wide (Note [Security policy: one per CPython runtime]), so every policy
    case runs in a fresh python3 (`child`) and reports back as JSON.
"""
import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch
from torch.package import PackageImporter as StockImporter

import pyfleet

PACKAGES = os.environ["PYFLEET_SECURITY_PACKAGES"]


def pkg(name):
    return os.path.join(PACKAGES, name + ".pt")


def digest(name):
    with open(pkg(name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- integrity pinning ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["model", "behaviours", "vision"])
def test_pinned_digest_opens_in_either_case(name):
    for d in (digest(name), digest(name).upper()):
        imp = pyfleet.PackageImporter(pkg(name), sha256=d)
        # Like the stock importer's: the root is the archive, records without its top folder.
        assert imp.file_structure().has_file(".data/version")


def test_mismatch_is_integrity_error_naming_both_digests():
    wrong = digest("vision")
    with pytest.raises(pyfleet.IntegrityError) as info:
        pyfleet.PackageImporter(pkg("model"), sha256=wrong)
    e = info.value
    assert isinstance(e, pyfleet.SecurityError) and isinstance(e, PermissionError)
    assert str(e) == f"{pkg('model')}: SHA-256 mismatch: expected {wrong}, the file has {digest('model')}"
    assert e.path == pkg("model")


def test_pin_applies_to_a_binary_file_object():
    with open(pkg("model"), "rb") as f:
        imp = pyfleet.PackageImporter(f, sha256=digest("model"))
        assert imp.load_pickle("model", "state_dict.pkl", safe=True)
    with open(pkg("model"), "rb") as f:
        with pytest.raises(pyfleet.IntegrityError):
            pyfleet.PackageImporter(f, sha256=digest("behaviours"))


def test_a_modified_copy_fails_its_pin(tmp_path):
    data = bytearray(open(pkg("model"), "rb").read())
    data[len(data) // 2] ^= 1
    copy = tmp_path / "model.pt"
    copy.write_bytes(bytes(data))
    with pytest.raises(pyfleet.IntegrityError, match="SHA-256 mismatch"):
        pyfleet.PackageImporter(str(copy), sha256=digest("model"))


@pytest.mark.parametrize("bad, exc", [("1234", ValueError), ("g" * 64, ValueError), (b"00" * 32, TypeError),
                                      (7, TypeError)])
def test_malformed_pin_is_refused(bad, exc):
    with pytest.raises(exc, match="sha256"):
        pyfleet.PackageImporter(pkg("model"), sha256=bad)


def test_a_directory_cannot_be_pinned(tmp_path):
    with zipfile.ZipFile(pkg("model")) as z:
        z.extractall(tmp_path)
    folder = str(tmp_path / "model")
    assert pyfleet.PackageImporter(folder).load_pickle("model", "state_dict.pkl", safe=True)
    with pytest.raises(ValueError, match="is a directory"):
        pyfleet.PackageImporter(folder, sha256=digest("model"))


@pytest.mark.parametrize("name", ["model", "behaviours", "vision"])
def test_inspect_sha256_equals_sha256sum(name):
    out = subprocess.run([os.environ["PYFLEET_INSPECT"], "--sha256", pkg(name)], check=True,
                         capture_output=True, text=True).stdout
    coreutils = subprocess.run(["sha256sum", pkg(name)], check=True, capture_output=True, text=True).stdout
    assert out == coreutils.split()[0] + "\n"
    assert out.strip() == digest(name)


# ---- safe unpickling -------------------------------------------------------------------

def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert type(a) is type(b) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("resource", ["state_dict.pkl", "tensors.pkl", "example.pkl"])
def test_safe_load_of_weights_equals_the_stock_importer(resource):
    ours = pyfleet.PackageImporter(pkg("model")).load_pickle("model", resource, safe=True)
    assert_same(ours, StockImporter(pkg("model")).load_pickle("model", resource))


def test_safe_load_refuses_os_system_before_it_runs(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("PYFLEET_SECURITY_MARKER", str(marker))
    imp = pyfleet.PackageImporter(pkg("model"))
    with pytest.raises(pickle.UnpicklingError) as info:
        imp.load_pickle("model", "evil.pkl", safe=True)
    e = info.value
    assert isinstance(e, pyfleet.GlobalDenied) and isinstance(e, pyfleet.SecurityError)
    assert e.global_name == "posix.system"
    assert "global 'posix.system' is not allowed" in str(e) and "model/evil.pkl" in str(e)
    assert not marker.exists()
    assert "posix" not in imp.modules  # refused before the module was imported
    # The importer (and the process) stay usable.
    assert_same(imp.load_pickle("model", "state_dict.pkl", safe=True),
                StockImporter(pkg("model")).load_pickle("model", "state_dict.pkl"))


def test_unsafe_load_runs_the_payload(tmp_path, monkeypatch):
    """Why safe=True exists: the stock behaviour runs os.system."""
    marker = tmp_path / "marker"
    monkeypatch.setenv("PYFLEET_SECURITY_MARKER", str(marker))
    assert pyfleet.PackageImporter(pkg("model")).load_pickle("model", "evil.pkl") == 0
    assert marker.exists()


def test_safe_load_refuses_a_package_class_unless_allowed():
    imp = pyfleet.PackageImporter(pkg("model"))
    with pytest.raises(pyfleet.GlobalDenied, match="global 'secmodels.models.Mlp' is not allowed") as info:
        imp.load_pickle("model", "model.pkl", safe=True)
    assert info.value.global_name == "secmodels.models.Mlp"
    assert "secmodels.models" not in imp.modules  # its code never ran
    with pytest.raises(pyfleet.GlobalDenied, match="torch.nn.modules.container.Sequential"):
        imp.load_pickle("model", "model.pkl", allowed_globals=["secmodels.models.Mlp"])
    example = imp.load_pickle("model", "example.pkl", safe=True)
    expected = StockImporter(pkg("model")).load_pickle("model", "model.pkl")(example)
    for allowed in (["secmodels.models.Mlp", "torch.nn.modules.**"],
                    ["secmodels.models.*", "torch.nn.modules.container.Sequential", "torch.nn.modules.linear.*",
                     "torch.nn.modules.activation.ReLU"],
                    ["secmodels.**", "torch.nn.**"]):
        model = imp.load_pickle("model", "model.pkl", safe=True, allowed_globals=allowed)
        assert torch.allclose(model(example), expected), allowed


@pytest.mark.parametrize("bad, exc", [("torch.Tensor", TypeError), (["nodot"], ValueError), ([3], TypeError),
                                      (["a.b*c"], ValueError), ([".x"], ValueError)])
def test_malformed_allowed_globals_are_refused(bad, exc):
    with pytest.raises(exc, match="allowed_globals"):
        pyfleet.PackageImporter(pkg("model")).load_pickle("model", "state_dict.pkl", allowed_globals=bad)


def test_safe_globals_are_torch_weights_only_set_plus_dtypes():
    from torch._weights_only_unpickler import _get_allowed_globals

    safe = pyfleet.safe_globals()
    assert set(_get_allowed_globals()) <= safe
    assert {"torch.bool", "torch.uint8", "torch.bfloat16", "torch._utils._rebuild_tensor_v2",
            "collections.OrderedDict"} <= safe
    assert not {g for g in safe if g.startswith(("posix.", "os.", "subprocess."))}
    # The only builtins beyond torch's own (none in 1.13; bytearray and complex in 2.6): how
    # pickle protocol 3 spells a set (Note [Safe unpickling]).
    torch_builtins = {g for g in _get_allowed_globals() if g.startswith("builtins.")}
    assert ({g for g in safe if g.startswith("builtins.")} ==
            torch_builtins | {"builtins.set", "builtins.frozenset"})


# ---- the security policy (each case in a fresh python3) ----------------------------------

PRELUDE = textwrap.dedent("""\
    import json, os, sys
    import pyfleet
    out = {}
    def attempt(key, fn):
        try:
            out[key] = {"ok": fn()}
        except Exception as e:
            out[key] = {"type": type(e).__module__ + "." + type(e).__qualname__, "msg": str(e),
                        "event": getattr(e, "event", None), "name": getattr(e, "name", None),
                        "permission": isinstance(e, PermissionError)}
    """)


def child(*parts, env=None):
    """Runs PRELUDE + parts (each dedented on its own) in a fresh python3; returns its `out` dict."""
    code = "".join(textwrap.dedent(part) for part in parts)
    full = PRELUDE + code + "\nprint('RESULT ' + json.dumps(out, default=repr))\n"
    proc = subprocess.run([sys.executable, "-c", full], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.fixture
def world(tmp_path):
    """A listening socket and the paths behaviours.pt's modules use, as child env vars."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    env = {"PYFLEET_SECURITY_PORT": str(listener.getsockname()[1]),
           "PYFLEET_SECURITY_WRITE_PATH": str(tmp_path / "written"),
           "PYFLEET_SECURITY_MARKER": str(tmp_path / "marker"),
           "PYFLEET_PACKAGE": pkg("behaviours")}

    def connections():
        n = 0
        while True:
            try:
                listener.accept()[0].close()
                n += 1
            except socket.timeout:
                return n

    yield env, tmp_path, connections
    listener.close()


IMPORT_BEHAVIOURS = """
    def module(name):
        return pyfleet.PackageImporter(os.environ["PYFLEET_PACKAGE"]).import_module("secmodels." + name)
    attempt("spawns", lambda: module("spawns").RETURNCODE)
    attempt("connects", lambda: module("connects").CONNECTED)
    attempt("writes", lambda: module("writes").WROTE)
    attempt("json", lambda: module("uses_json").dumps([1]))
    attempt("math", lambda: module("uses_math").hypot(3, 4))
    """


def test_import_time_misbehaviour_is_refused_under_the_policy(world):
    env, tmp, connections = world
    # The allowlist lets the modules import what they legitimately need (os, subprocess,
    # socket): the audit hook, not the allowlist, must be what refuses their behaviour.
    out = child("""
        pyfleet.install_security_policy(allowed_extern_modules=["math", "os", "subprocess", "socket"])
        """, IMPORT_BEHAVIOURS, """
        attempt("direct_connect", lambda: __import__("socket").socket().connect(
            ("127.0.0.1", int(os.environ["PYFLEET_SECURITY_PORT"]))))
        attempt("read", lambda: len(open(os.environ["PYFLEET_PACKAGE"], "rb").read(2)))
        attempt("after", lambda: module("uses_math").hypot(6, 8))
        """, env=env)
    for key, event in [("spawns", "subprocess.Popen"), ("connects", "socket.getaddrinfo"), ("writes", "open"),
                       ("direct_connect", "socket.connect")]:
        r = out[key]
        assert r["type"] == "pyfleet.AuditEventDenied" and r["permission"], (key, r)
        assert r["event"] == event and f"audit event '{event}' refused" in r["msg"], (key, r)
    assert out["json"]["type"] == "pyfleet.ImportDenied" and out["json"]["name"] == "json"
    assert "imports the extern module 'json'" in out["json"]["msg"] and out["json"]["permission"]
    assert out["math"] == {"ok": 5.0} and out["after"] == {"ok": 10.0} and out["read"] == {"ok": 2}
    assert connections() == 0
    assert not (tmp / "written").exists()


def test_the_same_imports_succeed_without_a_policy(world):
    env, tmp, connections = world
    out = child(IMPORT_BEHAVIOURS, env=env)
    assert out == {"spawns": {"ok": 0}, "connects": {"ok": True}, "writes": {"ok": True},
                   "json": {"ok": "[1]"}, "math": {"ok": 5.0}}
    assert connections() == 1
    assert (tmp / "written").read_text() == "written by a package\n"


def test_each_guard_is_switched_on_alone(world):
    env, tmp, connections = world
    out = child("""
        pyfleet.install_security_policy(allow_processes=True, allow_file_writes=True)
        """, IMPORT_BEHAVIOURS, env=env)
    assert out["spawns"] == {"ok": 0} and out["writes"] == {"ok": True} and out["json"] == {"ok": "[1]"}
    assert out["connects"]["event"] == "socket.getaddrinfo"
    assert connections() == 0


def test_the_policy_is_permanent_and_readable():
    out = child("""
        attempt("none", pyfleet.security_policy)
        attempt("bad", lambda: pyfleet.install_security_policy(allowed_extern_modules="torch"))
        attempt("none_after_bad", pyfleet.security_policy)
        pyfleet.install_security_policy(allowed_extern_modules=("torch.**", "math"), allow_network=True)
        attempt("policy", pyfleet.security_policy)
        attempt("again", lambda: pyfleet.install_security_policy(allow_processes=True))
        attempt("spawn", lambda: __import__("subprocess").run(["true"]).returncode)
        attempt("fd_write", lambda: open(1, "w", closefd=False).write(""))
        attempt("remove", lambda: os.remove("/nonexistent/pyfleet"))
        """)
    assert out["none"] == {"ok": None} and out["none_after_bad"] == {"ok": None}
    assert out["bad"]["type"] == "builtins.TypeError" and "not a str" in out["bad"]["msg"]
    assert out["policy"] == {"ok": {"allowed_extern_modules": ["torch", "math"], "allow_processes": False,
                                    "allow_network": True, "allow_file_writes": False}}
    assert out["again"]["type"] == "builtins.RuntimeError" and "already installed" in out["again"]["msg"]
    assert out["spawn"]["event"] == "subprocess.Popen"
    assert out["fd_write"] == {"ok": 0}  # a descriptor already open: not refused (see the Note)
    assert out["remove"]["event"] == "os.remove"


def test_torch_workloads_run_under_the_strictest_policy():
    """import torch and torchvision, load and run models, TorchScript, under the policy."""
    expected = {}
    for name in ("model", "vision"):
        imp = StockImporter(pkg(name))
        expected[name] = imp.load_pickle("model", "model.pkl")(imp.load_pickle("model", "example.pkl")).tolist()
    out = child("""
        pyfleet.install_security_policy(allowed_extern_modules=["torch", "torchvision", "collections", "math"])
        import torch, torchvision  # under the policy
        def run(name):
            imp = pyfleet.PackageImporter(os.environ["PYFLEET_SECURITY_PACKAGES"] + "/" + name + ".pt")
            return imp.load_pickle("model", "model.pkl")(imp.load_pickle("model", "example.pkl")).tolist()
        attempt("model", lambda: run("model"))
        attempt("vision", lambda: run("vision"))
        def script():
            m = torch.jit.script(torch.nn.Linear(2, 2))
            return m(torch.ones(1, 2)).shape[1]
        attempt("script", script)
        attempt("fx", lambda: len(list(torch.fx.symbolic_trace(torch.nn.ReLU()).graph.nodes)))
        """)
    for name in ("model", "vision"):
        assert "ok" in out[name], out[name]
        assert torch.allclose(torch.tensor(out[name]["ok"]), torch.tensor(expected[name]), atol=1e-5)
    assert out["script"] == {"ok": 2} and out["fx"] == {"ok": 3}
