// BindArgs (interpreter/importer/arg_parse.h): binding of METH_FASTCALL|METH_KEYWORDS
// arguments, for any number of parameters (item 6 of issue 7: it used a fixed
// `bool given[16]` indexed by parameter without checking the count). This binary embeds
// Debian's libpython3.11 directly (BindArgs is CPython API code, not pyfleet's ABI).
#include <Python.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "interpreter/importer/arg_parse.h"

namespace pyfleet::internal {
namespace {

using ::testing::HasSubstr;

class ArgParseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    ASSERT_FALSE(PyStatus_Exception(status));
  }

  // The pending exception's message ("" if none); clears it.
  static std::string TakeError() {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    std::string out;
    if (value != nullptr) {
      PyObject* s = PyObject_Str(value);
      if (s != nullptr) out = PyUnicode_AsUTF8(s);
      Py_XDECREF(s);
    }
    if (type != nullptr) out = std::string(reinterpret_cast<PyTypeObject*>(type)->tp_name) + ": " + out;
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return out;
  }
};

// 20 parameters p0..p19: more than the 16 the old fixed array held.
constexpr const char* const kNames[] = {"p0",  "p1",  "p2",  "p3",  "p4",  "p5",  "p6",  "p7",  "p8",  "p9",
                                        "p10", "p11", "p12", "p13", "p14", "p15", "p16", "p17", "p18", "p19"};

TEST_F(ArgParseTest, BindsKeywordsPastTheSixteenthParameter) {
  PyObject* one = PyLong_FromLong(1);
  PyObject* nineteen = PyLong_FromLong(19);
  PyObject* args[] = {one, nineteen};
  PyObject* kwnames = Py_BuildValue("(s)", "p19");
  PyObject* out[20] = {};
  for (PyObject*& o : out) o = Py_None;
  ASSERT_EQ(BindArgs("f", args, 1, kwnames, kNames, 20, 1, out), 0) << TakeError();
  EXPECT_EQ(out[0], one);
  EXPECT_EQ(out[19], nineteen);
  EXPECT_EQ(out[18], Py_None);

  // The same keyword twice is caught for p19 as for any other.
  PyObject* twice_names = Py_BuildValue("(ss)", "p19", "p19");
  PyObject* twice[] = {nineteen, nineteen};
  EXPECT_EQ(BindArgs("f", twice, 0, twice_names, kNames, 20, 0, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("f() got multiple values for argument 'p19'"));

  // A required parameter past the 16th is reported when missing.
  EXPECT_EQ(BindArgs("f", args, 1, nullptr, kNames, 20, 18, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("f() missing 1 required positional argument: 'p1'"));
  Py_DECREF(twice_names);
  Py_DECREF(kwnames);
  Py_DECREF(nineteen);
  Py_DECREF(one);
}

TEST_F(ArgParseTest, RejectsAParameterSpecThatDoesNotFitTheNames) {
  static const char* const names[] = {"a", "b"};
  PyObject* out[2] = {nullptr, Py_None};
  EXPECT_EQ(BindArgs("g", nullptr, 0, nullptr, names, /*npos=*/3, 1, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("SystemError: g(): bad parameter spec (2 names, 3 positional, 1 required)"));
  EXPECT_EQ(BindArgs("g", nullptr, 0, nullptr, names, 2, /*nrequired=*/3, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("bad parameter spec"));
}

TEST_F(ArgParseTest, KeepsPythonsMessagesForTheUsualMistakes) {
  static const char* const names[] = {"package", "resource"};
  PyObject* out[2] = {nullptr, nullptr};
  PyObject* x = PyUnicode_FromString("x");
  PyObject* three[] = {x, x, x};
  EXPECT_EQ(BindArgs("PackageImporter.load_binary", three, 3, nullptr, names, 2, 2, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("load_binary() takes 3 positional arguments but 4 were given"));
  PyObject* kw = Py_BuildValue("(s)", "nope");
  PyObject* one_kw[] = {x, x};
  EXPECT_EQ(BindArgs("PackageImporter.load_binary", one_kw, 1, kw, names, 2, 2, out), -1);
  EXPECT_THAT(TakeError(), HasSubstr("got an unexpected keyword argument 'nope'"));
  Py_DECREF(kw);
  Py_DECREF(x);
}

}  // namespace
}  // namespace pyfleet::internal
