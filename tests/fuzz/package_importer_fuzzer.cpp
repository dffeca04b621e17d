// File: package_importer_fuzzer.cpp
//
// libFuzzer target: the C++ PackageImporter (interpreter/importer, module `pyfleet`)
// inside a real CPython on mutated torch.package archives. LLVMFuzzerInitialize embeds
// Debian's CPython 3.11 (libpython3.11.so: the same 3.11.2 the interpreter library links
// statically), registers `pyfleet` as a built-in module through the inittab exactly as a
// pyfleet interpreter does (interpreter/src/lifecycle.cpp), imports torch once and then
// tests/fuzz/package_importer_fuzz.py, whose fuzz_one(data) runs per input:
// PackageImporter(io.BytesIO(data)), file_structure(), python_version(), load_binary/
// load_text of the records, import_module of the .py records, load_pickle of the .pkl
// records (aliased and copy_storages=True). A corrupt package must come out as a clean
// Python exception; a C-API protocol violation (SystemError), a C++ exception escaping
// (std::terminate), or anything ASan/UBSan sees in the instrumented importer and archive
// code is a crash.
//
// Why not a whole pyfleet::Interpreter (libpyfleet + a loader-made copy of the
// interpreter library)? The importer code is the same object files either way (an
// OBJECT library linked into both); the embedded route needs no clang build of the host
// library and LibTorch-heavy runtime/, no ASan-instrumented library copies made by our
// own ELF loader, and gives libFuzzer one process whose coverage it sees directly. What
// is instrumented: the importer objects, pyfleet_archive and pyfleet_base; CPython and
// torch are not (their own bugs are out of scope). README-level notes: tests/fuzz/README.md.
//
//   scripts/fuzz package_importer_fuzzer 300
#include <Python.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "interpreter/importer/package_importer.h"

namespace {

PyObject* g_fuzz_one = nullptr;  // package_importer_fuzz.fuzz_one (owned, never released)

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "package_importer_fuzzer: %s\n", what);
  if (PyErr_Occurred()) PyErr_Print();
  std::fflush(stderr);
  std::abort();
}

}  // namespace

// CPython and torch keep plenty of memory until exit by design: LeakSanitizer's exit-time
// report would be all theirs (and symbolizing it takes minutes).
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (PyImport_AppendInittab("pyfleet", PyInit_pyfleet) < 0) Die("PyImport_AppendInittab failed");
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;  // libFuzzer owns SIGINT/SIGALRM
  config.site_import = 1;              // Debian's site.py adds dist-packages (torch)
  config.write_bytecode = 0;
  PyStatus status = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) Die(status.err_msg ? status.err_msg : "Py_InitializeFromConfig");
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  PyObject* dir = PyUnicode_FromString(PYFLEET_FUZZ_HARNESS_DIR);
  if (sys_path == nullptr || dir == nullptr || PyList_Insert(sys_path, 0, dir) < 0) {
    Die("cannot extend sys.path");
  }
  Py_DECREF(dir);
  PyObject* harness = PyImport_ImportModule("package_importer_fuzz");
  if (harness == nullptr) Die("cannot import package_importer_fuzz");
  PyObject* r = PyObject_CallMethod(harness, "setup", nullptr);
  if (r == nullptr) Die("package_importer_fuzz.setup() failed");
  Py_DECREF(r);
  g_fuzz_one = PyObject_GetAttrString(harness, "fuzz_one");
  Py_DECREF(harness);
  if (g_fuzz_one == nullptr) Die("no fuzz_one");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PyObject* bytes = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(data),
                                              static_cast<Py_ssize_t>(size));
  if (bytes == nullptr) Die("PyBytes_FromStringAndSize");
  PyObject* r = PyObject_CallOneArg(g_fuzz_one, bytes);
  Py_DECREF(bytes);
  if (r == nullptr) Die("fuzz_one raised (a C-API protocol violation, see above)");
  Py_DECREF(r);
  if (PyErr_Occurred()) Die("an exception is pending after fuzz_one returned");
  return 0;
}
