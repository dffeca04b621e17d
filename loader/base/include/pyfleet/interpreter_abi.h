/* File: interpreter_abi.h
 *
 * The one versioned C ABI between the host (runtime/) and a copy of the interpreter
 * library (interpreter/). Every copy of libpyfleet_interpreter.so exports exactly one
 * pyfleet symbol, `pyfleet_interpreter_abi`, which returns a const table of entry
 * points. The host checks `abi_version` and `struct_size` right after dlsym.
 *
 *   const PyfleetInterpreterAbi* abi = pyfleet_interpreter_abi();
 *   PyfleetInterp* interp = NULL;
 *   PyfleetStatus* s = abi->create(&config, &interp);
 *   if (s != NULL) { fprintf(stderr, "%s\n", s->message); abi->status_free(s); }
 *   s = abi->run(interp, "import torch", "<host>");
 *
 * Only C scalars, C structs, opaque handles and pointers to objects owned by the
 * process-global LibTorch cross this boundary: no std:: types, no absl, no exceptions.
 *
 * Errors: every fallible entry returns a PyfleetStatus* that is NULL on success and
 * otherwise owned by the caller, who frees it with `status_free`.
 *
 * GIL contract (see Note [Persistent thread states] in interpreter/src/gil.h): unless an
 * entry says otherwise it must be called WITHOUT this interpreter's GIL held; it takes
 * the GIL itself, with the calling thread's persistent PyThreadState, and releases it
 * before returning. Entries are thread-safe: any host thread may call any entry.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on ANY incompatible change to a struct or entry below. */
#define PYFLEET_INTERPRETER_ABI_VERSION 1

/* Numbered exactly like absl::StatusCode, so the host converts with a cast. */
typedef enum PyfleetCode {
  PYFLEET_OK = 0,
  PYFLEET_CANCELLED = 1,
  PYFLEET_UNKNOWN = 2,
  PYFLEET_INVALID_ARGUMENT = 3,
  PYFLEET_NOT_FOUND = 5,
  PYFLEET_ALREADY_EXISTS = 6,
  PYFLEET_FAILED_PRECONDITION = 9,
  PYFLEET_OUT_OF_RANGE = 11,
  PYFLEET_UNIMPLEMENTED = 12,
  PYFLEET_INTERNAL = 13,
  PYFLEET_UNAVAILABLE = 14,
  PYFLEET_DATA_LOSS = 15,
} PyfleetCode;

/* An error. All strings are UTF-8 and NUL-terminated. The struct and each string are
 * allocated with malloc(), so any module of the process can free a status: with the
 * table's `status_free`, or field by field with free(). */
typedef struct PyfleetStatus {
  int32_t code;        /* a PyfleetCode, never PYFLEET_OK */
  char* message;       /* e.g. "division by zero" */
  char* python_type;   /* qualified exception type, e.g. "builtins.ZeroDivisionError"; NULL if the
                          error did not come from Python */
  char* traceback;     /* "Traceback (most recent call last):\n..." as traceback.format_exception
                          prints it; NULL if none */
} PyfleetStatus;

/* Opaque handles. A PyfleetObj* is a strong reference to a Python object living in one
 * interpreter; it must only be passed back to the interpreter that produced it. */
typedef struct PyfleetInterp PyfleetInterp;
typedef struct PyfleetObj PyfleetObj;

/* ---- Values ---------------------------------------------------------------------- */

typedef enum PyfleetValueKind {
  PYFLEET_VALUE_NONE = 0,
  PYFLEET_VALUE_BOOL = 1,
  PYFLEET_VALUE_INT = 2,
  PYFLEET_VALUE_DOUBLE = 3,
  PYFLEET_VALUE_STRING = 4, /* UTF-8 text -> str */
  PYFLEET_VALUE_BYTES = 5,  /* -> bytes */
  PYFLEET_VALUE_TENSOR = 6,
  PYFLEET_VALUE_OBJECT = 7, /* a PyfleetObj of the same interpreter */
} PyfleetValueKind;

/* A value that crosses the boundary.
 *
 * As an argument (call, from_value) everything a value points to is BORROWED for the
 * duration of the entry. As a result (to_value) the caller OWNS it and releases it with
 * `value_clear`: `str.data` is malloc'ed, `tensor` is a +1 reference, `obj` is a new
 * reference. */
typedef struct PyfleetValue {
  int32_t kind; /* a PyfleetValueKind */
  union {
    int64_t i;  /* BOOL (0/1) and INT */
    double d;   /* DOUBLE */
    struct {
      const char* data;
      size_t size;
    } str;      /* STRING and BYTES */
    /* TENSOR: a c10::TensorImpl* of the process-global LibTorch. As a result it is a +1
     * reference made with intrusive_ptr::release(); reclaim it with
     * intrusive_ptr<TensorImpl, UndefinedTensorImpl>::reclaim(). */
    void* tensor;
    PyfleetObj* obj; /* OBJECT */
  } u;
} PyfleetValue;

typedef struct PyfleetKwarg {
  const char* name;
  PyfleetValue value;
} PyfleetKwarg;

/* ---- Package archives ------------------------------------------------------------ */

/* One record of an archive as bytes in memory. For a stored record `data` points into
 * the archive's single shared mapping and `owner` keeps that mapping alive; for a
 * deflated one it points to a private buffer. Either way call release(owner) once when
 * done. */
typedef struct PyfleetRecordView {
  const void* data;
  size_t size;
  void* owner;
  void (*release)(void* owner);
} PyfleetRecordView;

/* A read-only, thread-safe view of a torch.package ZIP archive, implemented by whoever
 * opened it (the host's PackageArchive, shared by every interpreter, or an archive the
 * importer opened itself). No entry needs or takes a GIL. Reference counted: retain and
 * release may be called from any thread. */
typedef struct PyfleetArchive {
  uint32_t struct_size;
  void* ctx;
  void (*retain)(void* ctx);
  void (*release)(void* ctx);
  /* The path given when it was opened (or "<binary>" for bytes), as error messages and
   * PackageImporter.filename name it. */
  const char* (*path)(void* ctx);
  /* Records in archive order, named WITHOUT the archive's top-level folder, exactly as
   * torch's PyTorchFileReader.get_all_records() lists them (".data/version", "m/x.py"). */
  size_t (*record_count)(void* ctx);
  const char* (*record_name)(void* ctx, size_t index);
  /* Index of the record named `name` (as record_name gives it), or -1. */
  int64_t (*find)(void* ctx, const char* name);
  /* Reads one record. NULL on success; else a status the caller frees with
   * free() (see PyfleetStatus): DATA_LOSS for a CRC or size mismatch, OUT_OF_RANGE for a
   * bad index. */
  PyfleetStatus* (*read)(void* ctx, size_t index, PyfleetRecordView* out);
} PyfleetArchive;

/* ---- Interpreter configuration --------------------------------------------------- */

/* Source of a module the host injects into an interpreter (importable by name). */
typedef struct PyfleetModuleSource {
  const char* name;    /* dotted module name */
  const char* source;  /* Python source text */
  int32_t is_package;
} PyfleetModuleSource;

/* Loads a private copy of a native library for one interpreter. Called from the
 * interpreter's _PyImport_FindSharedFuncptr with that interpreter's GIL held. Returns a
 * dlopen() handle, or NULL with *error set to a malloc'ed message (freed with free()). */
typedef struct PyfleetExtensionLoader {
  void* ctx;
  void* (*load)(void* ctx, const char* path, char** error);
} PyfleetExtensionLoader;

typedef struct PyfleetInterpConfig {
  uint32_t struct_size;       /* sizeof(PyfleetInterpConfig) as the host compiled it */
  int32_t index;              /* the host's number for this interpreter (for messages) */
  const char* const* sys_path; /* sys.path entries, in order */
  size_t sys_path_len;
  const PyfleetModuleSource* modules; /* extra modules, importable by name */
  size_t modules_len;
  PyfleetExtensionLoader extension_loader; /* required */
} PyfleetInterpConfig;

/* ---- The entry table ------------------------------------------------------------- */

typedef struct PyfleetInterpreterAbi {
  uint32_t abi_version; /* PYFLEET_INTERPRETER_ABI_VERSION of the library */
  uint32_t struct_size; /* sizeof(PyfleetInterpreterAbi) of the library */

  /* Frees a status (NULL is allowed). No GIL needed. */
  void (*status_free)(PyfleetStatus* status);

  /* Starts the CPython of this library copy. Only one interpreter per library copy:
   * a second create on the same copy is FAILED_PRECONDITION. Returns with the GIL
   * released. */
  PyfleetStatus* (*create)(const PyfleetInterpConfig* config, PyfleetInterp** out);

  /* Executes `code` in module __main__. `filename` appears in tracebacks. */
  PyfleetStatus* (*run)(PyfleetInterp* interp, const char* code, const char* filename);

  /* Evaluates an expression in __main__'s namespace. *out is a new reference. */
  PyfleetStatus* (*eval)(PyfleetInterp* interp, const char* expression, PyfleetObj** out);

  /* import_module(name). *out is a new reference. */
  PyfleetStatus* (*import_module)(PyfleetInterp* interp, const char* name, PyfleetObj** out);

  /* getattr(obj, name); obj NULL means module __main__. *out is a new reference. */
  PyfleetStatus* (*get_attr)(PyfleetInterp* interp, PyfleetObj* obj, const char* name,
                             PyfleetObj** out);

  /* obj[key]. *out is a new reference. */
  PyfleetStatus* (*get_item)(PyfleetInterp* interp, PyfleetObj* obj, const PyfleetValue* key,
                             PyfleetObj** out);

  /* fn(*args, **kwargs). *out is a new reference (never NULL on success; None is an
   * object). Tensors in args are wrapped without a copy; see Note [Tensor handoff]. */
  PyfleetStatus* (*call)(PyfleetInterp* interp, PyfleetObj* fn, const PyfleetValue* args,
                         size_t nargs, const PyfleetKwarg* kwargs, size_t nkwargs,
                         PyfleetObj** out);

  /* Converts an object to a value: None, bool, int (int64 range), float, str, bytes and
   * torch.Tensor convert; anything else is INVALID_ARGUMENT naming its type. */
  PyfleetStatus* (*to_value)(PyfleetInterp* interp, PyfleetObj* obj, PyfleetValue* out);

  /* Makes an object from a value. *out is a new reference. */
  PyfleetStatus* (*from_value)(PyfleetInterp* interp, const PyfleetValue* value,
                               PyfleetObj** out);

  /* Releases what a result PyfleetValue owns and sets it to NONE. Takes the GIL only
   * for OBJECT values. */
  void (*value_clear)(PyfleetInterp* interp, PyfleetValue* value);

  /* A new reference to the same object. */
  PyfleetObj* (*obj_retain)(PyfleetInterp* interp, PyfleetObj* obj);
  /* Drops a reference (NULL is allowed). */
  void (*obj_release)(PyfleetInterp* interp, PyfleetObj* obj);

  /* repr(obj) as a malloc'ed UTF-8 string in *out (free with free()). */
  PyfleetStatus* (*repr)(PyfleetInterp* interp, PyfleetObj* obj, char** out);

  /* Makes a package importer for `archive` in this interpreter (a PackageImporter of
   * the C++ importer type, usable like torch.package.PackageImporter). The importer
   * retains the archive. *out is a new reference. */
  PyfleetStatus* (*make_package_importer)(PyfleetInterp* interp, const PyfleetArchive* archive,
                                          PyfleetObj** out);

  /* Deletes the calling thread's persistent PyThreadState for this interpreter, if any.
   * Call it from a host thread that is about to exit after using the interpreter. */
  void (*detach_thread)(PyfleetInterp* interp);

  /* Runs Py_FinalizeEx. The library copy stays mapped (extensions pin it); after this
   * every entry but status_free returns FAILED_PRECONDITION. */
  PyfleetStatus* (*finalize)(PyfleetInterp* interp);
} PyfleetInterpreterAbi;

/* The only pyfleet symbol a library copy exports. */
typedef const PyfleetInterpreterAbi* (*PyfleetInterpreterAbiFn)(void);
#define PYFLEET_INTERPRETER_ABI_SYMBOL "pyfleet_interpreter_abi"

#ifdef __cplusplus
}
#endif
