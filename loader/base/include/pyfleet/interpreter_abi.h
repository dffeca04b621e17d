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
 *   s = abi->run(interp, "def f(x):\n    return {'y': [x, x * 2]}\n", "<host>");
 *   PyfleetObj* f = NULL;
 *   s = abi->get_attr(interp, NULL, "f", &f);
 *   PyfleetValue arg = {PYFLEET_VALUE_INT, {.i = 21}}, result;
 *   s = abi->call_value(interp, f, &arg, 1, NULL, 0, &result);  // one GIL hold
 *   ... result.kind == PYFLEET_VALUE_DICT, result.u.seq.items[1].u.seq.items[1].u.i == 42 ...
 *   abi->value_clear(interp, &result);
 *   abi->obj_release(interp, f);
 *
 * Only C scalars, C structs, opaque handles and pointers to objects owned by the
 * process-global LibTorch cross this boundary: no std:: types, no absl, no exceptions.
 * Every function pointer in this header (entries and the host's callbacks) is noexcept
 * when compiled as C++ (PYFLEET_NOEXCEPT): nothing may unwind across the boundary, and
 * a callback that could throw does not compile into the table.
 *
 * Errors: every fallible entry returns a PyfleetStatus* that is NULL on success and
 * otherwise owned by the caller, who frees it with `status_free`. A Python exception
 * keeps its type name and traceback; its code follows its type (see PyfleetCode).
 *
 * GIL contract (see Note [Persistent thread states] in interpreter/src/gil.h): unless an
 * entry says otherwise it must be called WITHOUT this interpreter's GIL held, or from
 * inside a host callback that this interpreter's Python code is running (entries nest);
 * it takes the GIL itself, with the calling thread's persistent PyThreadState, and
 * releases it before returning. Entries are thread-safe: any host thread may call any
 * entry.
 *
 * After finalize (see Note [Finalize waits for calls in flight] in
 * interpreter/src/errors.h): every entry that returns a PyfleetStatus* returns
 * FAILED_PRECONDITION, except status_free. The entries that return no status are safe
 * no-ops there: obj_retain returns its argument, obj_release does nothing, value_clear
 * still frees what a value owns outside Python (strings, tensors, item arrays) and drops
 * OBJECT references without touching Python, detach_thread and clear_interrupt do
 * nothing.
 *
 * Version history: 1 first table; 2 adds nested values (LIST, TUPLE, DICT), the status
 * codes DEADLINE_EXCEEDED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, ABORTED and
 * UNAUTHENTICATED, noexcept function types, and the entries call_value, has_attr,
 * interrupt and clear_interrupt; later in 2 (compatible: struct_size tells),
 * PyfleetInterpConfig.python_allocator.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Function pointers of this header are noexcept in C++ (part of the type since C++17),
 * so only noexcept functions can be stored in them. Empty in C. */
#ifdef __cplusplus
#define PYFLEET_NOEXCEPT noexcept
#else
#define PYFLEET_NOEXCEPT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on ANY incompatible change to a struct or entry below. */
#define PYFLEET_INTERPRETER_ABI_VERSION 2

/* Numbered exactly like absl::StatusCode (all of it, 0..16), so the host converts with a
 * cast. Python exceptions map as follows (a subclass maps like its base; first match
 * wins): ModuleNotFoundError/ImportError, AttributeError, KeyError, FileNotFoundError ->
 * NOT_FOUND; PermissionError -> PERMISSION_DENIED; TimeoutError -> DEADLINE_EXCEEDED;
 * MemoryError, RecursionError -> RESOURCE_EXHAUSTED; KeyboardInterrupt -> CANCELLED;
 * IndexError -> OUT_OF_RANGE; TypeError, ValueError -> INVALID_ARGUMENT;
 * NotImplementedError -> UNIMPLEMENTED; anything else -> UNKNOWN. */
typedef enum PyfleetCode {
  PYFLEET_OK = 0,
  PYFLEET_CANCELLED = 1,
  PYFLEET_UNKNOWN = 2,
  PYFLEET_INVALID_ARGUMENT = 3,
  PYFLEET_DEADLINE_EXCEEDED = 4,
  PYFLEET_NOT_FOUND = 5,
  PYFLEET_ALREADY_EXISTS = 6,
  PYFLEET_PERMISSION_DENIED = 7,
  PYFLEET_RESOURCE_EXHAUSTED = 8,
  PYFLEET_FAILED_PRECONDITION = 9,
  PYFLEET_ABORTED = 10,
  PYFLEET_OUT_OF_RANGE = 11,
  PYFLEET_UNIMPLEMENTED = 12,
  PYFLEET_INTERNAL = 13,
  PYFLEET_UNAVAILABLE = 14,
  PYFLEET_DATA_LOSS = 15,
  PYFLEET_UNAUTHENTICATED = 16,
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
  PYFLEET_VALUE_LIST = 8,   /* u.seq: `size` items -> list */
  PYFLEET_VALUE_TUPLE = 9,  /* u.seq: `size` items -> tuple */
  PYFLEET_VALUE_DICT = 10,  /* u.seq: `size` entries as 2*size items: key, value, key, value... */
} PyfleetValueKind;

/* Deepest nesting a conversion accepts, either way: the top-level value is at depth 0,
 * the items of a LIST/TUPLE/DICT one deeper than it. A value deeper than this (or a list
 * that contains itself) is INVALID_ARGUMENT. */
#define PYFLEET_VALUE_MAX_DEPTH 100

/* A value that crosses the boundary.
 *
 * As an argument (call, call_value, from_value, get_item) everything a value points to is
 * BORROWED for the duration of the entry, items of LIST/TUPLE/DICT included. As a result
 * (to_value, call_value) the caller OWNS it and releases it with `value_clear`, which
 * recurses: `str.data` is malloc'ed, `tensor` is a +1 reference, `obj` is a new reference,
 * and `seq.items` is a malloc'ed array (NULL when empty) that owns each of its items.
 *
 * Python -> value (results): None, bool, int (int64 range, else OUT_OF_RANGE; also
 * objects with __index__, e.g. numpy integers), float, str, bytes, torch.Tensor, list,
 * tuple (namedtuple and torch.Size too: any tuple subclass), dict (and its subclasses;
 * keys convert like any value). Anything else is INVALID_ARGUMENT naming the type and where it sits, e.g.
 * "cannot convert a Python object of type 'Foo' at result[1]['aux'] to a value
 * (supported: ...)". Results never hold OBJECT values.
 * Value -> Python (arguments): the reverse; LIST -> list, TUPLE -> tuple, DICT -> dict. */
typedef struct PyfleetValue {
  int32_t kind; /* a PyfleetValueKind */
  union {
    int64_t i;  /* BOOL (0/1) and INT */
    double d;   /* DOUBLE */
    struct {
      const char* data;
      size_t size;
    } str;      /* STRING and BYTES */
    /* TENSOR: a c10::TensorImpl* of the process-global LibTorch (NULL: an undefined
     * tensor, None in Python). As a result it is a +1 reference made with
     * intrusive_ptr::release(); reclaim it with
     * intrusive_ptr<TensorImpl, UndefinedTensorImpl>::reclaim(). */
    void* tensor;
    PyfleetObj* obj; /* OBJECT */
    /* LIST and TUPLE: `size` items; DICT: `size` entries, stored as 2*size items
     * (key, value, key, value...). */
    struct {
      struct PyfleetValue* items;
      size_t size;
    } seq;
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
  void (*release)(void* owner) PYFLEET_NOEXCEPT;
} PyfleetRecordView;

/* A read-only, thread-safe view of a torch.package ZIP archive, implemented by whoever
 * opened it (the host's PackageArchive, shared by every interpreter, or an archive the
 * importer opened itself). No entry needs or takes a GIL. Reference counted: retain and
 * release may be called from any thread. The importer calls these from inside CPython
 * frames, so none may throw (PYFLEET_NOEXCEPT): every failure is a return value. */
typedef struct PyfleetArchive {
  uint32_t struct_size;
  void* ctx;
  void (*retain)(void* ctx) PYFLEET_NOEXCEPT;
  void (*release)(void* ctx) PYFLEET_NOEXCEPT;
  /* The path given when it was opened (or "<binary>" for bytes), as error messages and
   * PackageImporter.filename name it. */
  const char* (*path)(void* ctx) PYFLEET_NOEXCEPT;
  /* Records in archive order, named WITHOUT the archive's top-level folder, exactly as
   * torch's PyTorchFileReader.get_all_records() lists them (".data/version", "m/x.py"). */
  size_t (*record_count)(void* ctx) PYFLEET_NOEXCEPT;
  /* NULL for an index past the end. */
  const char* (*record_name)(void* ctx, size_t index) PYFLEET_NOEXCEPT;
  /* Index of the record named `name` (as record_name gives it), or -1 (also for a NULL
   * name, or when the lookup itself fails). */
  int64_t (*find)(void* ctx, const char* name) PYFLEET_NOEXCEPT;
  /* Reads one record. NULL on success; else a status the caller frees with
   * free() (see PyfleetStatus): DATA_LOSS for a CRC or size mismatch, OUT_OF_RANGE for a
   * bad index, RESOURCE_EXHAUSTED when memory runs out, INTERNAL for any other failure. */
  PyfleetStatus* (*read)(void* ctx, size_t index, PyfleetRecordView* out) PYFLEET_NOEXCEPT;
} PyfleetArchive;

/* ---- Interpreter configuration --------------------------------------------------- */

/* Source of a module the host injects into an interpreter (importable by name). Both
 * strings must be UTF-8: otherwise create fails (INVALID_ARGUMENT). A running
 * interpreter takes more with _pyfleet_bootstrap.register_module(name, source,
 * is_package) (stubs/_pyfleet_bootstrap.py). */
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
  void* (*load)(void* ctx, const char* path, char** error) PYFLEET_NOEXCEPT;
} PyfleetExtensionLoader;

/* Which allocator CPython uses for Python objects (PyPreConfig.allocator). */
typedef enum PyfleetPythonAllocator {
  /* pymalloc on huge-page arenas (see Note [Huge-page arenas for pymalloc]), unless the
   * environment variable PYFLEET_PYTHON_MALLOC says "malloc" (then as
   * PYFLEET_PYTHON_ALLOCATOR_MALLOC; "pymalloc" or empty: pymalloc; any other value
   * fails create with INVALID_ARGUMENT). The interpreter's isolated configuration
   * ignores PYTHONMALLOC; this variable is read for this one purpose only. */
  PYFLEET_PYTHON_ALLOCATOR_DEFAULT = 0,
  /* CPython's raw malloc for every domain (PYMEM_ALLOCATOR_MALLOC, as PYTHONMALLOC=malloc
   * does for python3), no arenas: each Python object is its own malloc() block, so
   * AddressSanitizer sees overflows and uses after free of Python objects that pymalloc's
   * arenas hide. Slower; for sanitizer runs (scripts/test-sanitizers). */
  PYFLEET_PYTHON_ALLOCATOR_MALLOC = 1,
} PyfleetPythonAllocator;

/* Fields are appended at the end; a library reads a field only when the host's
 * struct_size covers it (an older host's smaller config leaves it at its default). */
typedef struct PyfleetInterpConfig {
  uint32_t struct_size;       /* sizeof(PyfleetInterpConfig) as the host compiled it */
  int32_t index;              /* the host's number for this interpreter (for messages) */
  const char* const* sys_path; /* sys.path entries, in order */
  size_t sys_path_len;
  const PyfleetModuleSource* modules; /* extra modules, importable by name */
  size_t modules_len;
  PyfleetExtensionLoader extension_loader; /* required */
  /* Appended in version 2: a PyfleetPythonAllocator. Anything else is INVALID_ARGUMENT. */
  int32_t python_allocator;
} PyfleetInterpConfig;

/* The smallest config a library accepts: version 2 without python_allocator. */
#define PYFLEET_INTERP_CONFIG_MIN_SIZE offsetof(PyfleetInterpConfig, python_allocator)

/* ---- The entry table ------------------------------------------------------------- */

/* Entries are appended at the end; the comment of each states its GIL contract (the
 * default one of the file comment unless it says otherwise), what it owns, and what it
 * does after finalize (the file comment's rule unless it says otherwise). */
typedef struct PyfleetInterpreterAbi {
  uint32_t abi_version; /* PYFLEET_INTERPRETER_ABI_VERSION of the library */
  uint32_t struct_size; /* sizeof(PyfleetInterpreterAbi) of the library */

  /* Frees a status (NULL is allowed). No GIL needed; works after finalize. */
  void (*status_free)(PyfleetStatus* status) PYFLEET_NOEXCEPT;

  /* Starts the CPython of this library copy. Only one interpreter per library copy:
   * a second create on the same copy is FAILED_PRECONDITION, also after a create that
   * failed once CPython had started (that CPython is finalized again before the failing
   * create returns; the copy stays unusable). Returns with the GIL released. */
  PyfleetStatus* (*create)(const PyfleetInterpConfig* config, PyfleetInterp** out) PYFLEET_NOEXCEPT;

  /* Executes `code` in module __main__. `filename` appears in tracebacks. */
  PyfleetStatus* (*run)(PyfleetInterp* interp, const char* code, const char* filename) PYFLEET_NOEXCEPT;

  /* Evaluates an expression in __main__'s namespace. *out is a new reference. */
  PyfleetStatus* (*eval)(PyfleetInterp* interp, const char* expression, PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* import_module(name). *out is a new reference. */
  PyfleetStatus* (*import_module)(PyfleetInterp* interp, const char* name, PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* getattr(obj, name); obj NULL means module __main__. *out is a new reference. */
  PyfleetStatus* (*get_attr)(PyfleetInterp* interp, PyfleetObj* obj, const char* name,
                             PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* obj[key]; `key` is borrowed and may be nested (a TUPLE key indexes a dict by tuple).
   * *out is a new reference. */
  PyfleetStatus* (*get_item)(PyfleetInterp* interp, PyfleetObj* obj, const PyfleetValue* key,
                             PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* fn(*args, **kwargs); args and kwargs are borrowed values (nested ones included).
   * *out is a new reference (never NULL on success; None is an object). Tensors in args
   * are wrapped without a copy; see Note [Tensor handoff]. */
  PyfleetStatus* (*call)(PyfleetInterp* interp, PyfleetObj* fn, const PyfleetValue* args,
                         size_t nargs, const PyfleetKwarg* kwargs, size_t nkwargs,
                         PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* Converts an object to a value (see PyfleetValue for what converts); *out is owned by
   * the caller (value_clear). Unsupported types are INVALID_ARGUMENT naming the type and
   * its place, e.g. "... of type 'Foo' at value['aux'] ...". On error *out is NONE. */
  PyfleetStatus* (*to_value)(PyfleetInterp* interp, PyfleetObj* obj, PyfleetValue* out) PYFLEET_NOEXCEPT;

  /* Makes an object from a borrowed value (nested ones too). *out is a new reference. */
  PyfleetStatus* (*from_value)(PyfleetInterp* interp, const PyfleetValue* value,
                               PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* Releases what a result PyfleetValue owns, recursively, and sets it to NONE (NULL is
   * allowed). Takes the GIL only when the value holds an OBJECT (a result never does);
   * may be called with the GIL held. After finalize it still frees strings, tensors and
   * item arrays, and drops OBJECT references without touching Python. */
  void (*value_clear)(PyfleetInterp* interp, PyfleetValue* value) PYFLEET_NOEXCEPT;

  /* A new reference to the same object (returns `obj`; NULL is allowed). After finalize:
   * returns `obj` and does nothing. */
  PyfleetObj* (*obj_retain)(PyfleetInterp* interp, PyfleetObj* obj) PYFLEET_NOEXCEPT;
  /* Drops a reference (NULL is allowed). After finalize: does nothing (the object died
   * with its interpreter). */
  void (*obj_release)(PyfleetInterp* interp, PyfleetObj* obj) PYFLEET_NOEXCEPT;

  /* repr(obj) as a malloc'ed UTF-8 string in *out (free with free()). */
  PyfleetStatus* (*repr)(PyfleetInterp* interp, PyfleetObj* obj, char** out) PYFLEET_NOEXCEPT;

  /* Makes a package importer for `archive` in this interpreter (a PackageImporter of
   * the C++ importer type, usable like torch.package.PackageImporter). The importer
   * retains the archive. *out is a new reference. */
  PyfleetStatus* (*make_package_importer)(PyfleetInterp* interp, const PyfleetArchive* archive,
                                          PyfleetObj** out) PYFLEET_NOEXCEPT;

  /* Deletes the calling thread's persistent PyThreadState for this interpreter, if any.
   * Call it from a host thread that is about to exit after using the interpreter. Must
   * not be called from inside a call into this interpreter (then it does nothing).
   * After finalize: does nothing. */
  void (*detach_thread)(PyfleetInterp* interp) PYFLEET_NOEXCEPT;

  /* Runs Py_FinalizeEx, after refusing new calls and waiting for the calls in flight to
   * return (see Note [Finalize waits for calls in flight]): a call stuck in Python keeps
   * finalize waiting, so interrupt it first. FAILED_PRECONDITION when called again, or
   * from inside a call into this interpreter (a host callback of its Python code). The
   * library copy stays mapped (extensions pin it); after this see the file comment. */
  PyfleetStatus* (*finalize)(PyfleetInterp* interp) PYFLEET_NOEXCEPT;

  /* ---- Added in version 2 ---- */

  /* fn(*args, **kwargs) with the result converted as to_value does, in ONE GIL hold (one
   * crossing instead of call + to_value + obj_release). args and kwargs are borrowed;
   * *out is owned by the caller (value_clear). If the result does not convert, it is
   * dropped and the status (INVALID_ARGUMENT) names the type and its place, e.g.
   * "cannot convert a Python object of type 'Foo' at result[1]['aux'] to a value
   * (supported: ...)". On error *out is NONE. */
  PyfleetStatus* (*call_value)(PyfleetInterp* interp, PyfleetObj* fn, const PyfleetValue* args,
                               size_t nargs, const PyfleetKwarg* kwargs, size_t nkwargs,
                               PyfleetValue* out) PYFLEET_NOEXCEPT;

  /* hasattr(obj, name); obj NULL means module __main__. *out is 1 or 0. Like hasattr(),
   * only AttributeError means 0; any other exception of the lookup is the status. */
  PyfleetStatus* (*has_attr)(PyfleetInterp* interp, PyfleetObj* obj, const char* name,
                             int32_t* out) PYFLEET_NOEXCEPT;

  /* Asynchronously raises TimeoutError("pyfleet: call deadline exceeded") in the thread
   * of this interpreter whose Python thread id (threading.get_ident(), which for a host
   * thread is its pthread_self()) is `thread_id`, if that thread is running Python in
   * this interpreter now (as PyThreadState_SetAsyncExc does, under the GIL). *found is
   * the number of thread states affected: 0 when that thread is not inside a call into
   * this interpreter (nothing is left pending for a later call). The exception is raised when
   * the thread next runs bytecode: a call stuck in native code is affected only once it
   * returns to Python; the call then fails with DEADLINE_EXCEEDED, python_type
   * "builtins.TimeoutError" (unless Python code catches it). An interrupt the call never
   * saw is dropped when the call returns. Takes the GIL, so it waits for the switch
   * interval (5 ms) while another thread runs Python. See Note [Deadline interrupts]. */
  PyfleetStatus* (*interrupt)(PyfleetInterp* interp, uint64_t thread_id, int32_t* found) PYFLEET_NOEXCEPT;

  /* Drops an interrupt aimed at `thread_id` that has not been raised yet (no-op if none,
   * NULL interp allowed, and after finalize). Entries already drop an undelivered
   * interrupt of their own thread before they return, so a host never needs this for
   * correctness; it is for a host that wants to withdraw an interrupt of a call still
   * running. Takes the GIL. */
  void (*clear_interrupt)(PyfleetInterp* interp, uint64_t thread_id) PYFLEET_NOEXCEPT;
} PyfleetInterpreterAbi;

/* The only pyfleet symbol a library copy exports. */
typedef const PyfleetInterpreterAbi* (*PyfleetInterpreterAbiFn)(void) PYFLEET_NOEXCEPT;
#define PYFLEET_INTERPRETER_ABI_SYMBOL "pyfleet_interpreter_abi"

/* An interpreter library that defines PYFLEET_REDIRECT_PREFIX + NAME takes over every
   reference to NAME that the private copies of its interpreter make (Note [Redirected
   references] in loader/library_loader.h). */
#define PYFLEET_REDIRECT_PREFIX "pyfleet_redirect_"

#ifdef __cplusplus
}
#endif
