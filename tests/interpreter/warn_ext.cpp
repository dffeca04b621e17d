// pyfleet_warn_ext: a native extension whose loading emits two c10 warnings, from a
// static initializer (so while its copy is being loaded, inside pyfleet's registration
// warning filter; see Note [Duplicate registration warning] in
// interpreter/src/tensor_bridge.h):
//   * a duplicate-registration warning for an operator that is NOT aten::get_gradients,
//   * an ordinary warning.
// Both must still be printed: the filter drops exactly one warning.
#include <Python.h>

#include <c10/util/Exception.h>

namespace {

struct WarnOnLoad {
  WarnOnLoad() {
    TORCH_WARN(
        "Overriding a previously registered kernel for the same operator and the same dispatch key\n"
        "  operator: pyfleet_test::fake(int x) -> int\n");
    TORCH_WARN("pyfleet_warn_ext: an ordinary c10 warning");
  }
} warn_on_load;

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "pyfleet_warn_ext", nullptr, 0, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_pyfleet_warn_ext(void) { return PyModule_Create(&kModule); }
