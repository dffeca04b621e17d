// File: py_ref.h
//
// PyRef: an owning, move-only handle on a PyObject*, with pybind11's borrow/steal
// semantics in a few lines. Every PyObject* in interpreter/ that lives past one
// statement is a PyRef or a commented borrow (STYLE.md §7.3).
//
//   PyRef mod = PyRef::steal(PyImport_ImportModule("json"));   // new reference
//   if (!mod) return nullptr;                                  // exception is set
//   PyRef dict = PyRef::borrow(PyModule_GetDict(mod.get()));  // borrowed -> owned
//
// Requires the owning interpreter's GIL for construction from borrow, copying is
// deleted, and destruction (Py_XDECREF) also needs the GIL.
#pragma once

#include <Python.h>

#include <utility>

namespace pyfleet::internal {

class PyRef {
 public:
  PyRef() = default;
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  PyRef(PyRef&& other) noexcept : ptr_(other.release()) {}
  PyRef& operator=(PyRef&& other) noexcept {
    PyObject* old = ptr_;
    ptr_ = other.release();
    Py_XDECREF(old);  // after the swap: a __del__ may re-enter (see Py_CLEAR's comment)
    return *this;
  }
  ~PyRef() { Py_XDECREF(ptr_); }

  // Takes over a new reference (may be NULL).
  static PyRef steal(PyObject* p) { return PyRef(p); }
  // Adds a reference to a borrowed one (may be NULL).
  static PyRef borrow(PyObject* p) {
    Py_XINCREF(p);
    return PyRef(p);
  }

  PyObject* get() const { return ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }
  // Gives up ownership without a decref. Returns the (now caller-owned) reference.
  PyObject* release() { return std::exchange(ptr_, nullptr); }

 private:
  explicit PyRef(PyObject* p) : ptr_(p) {}
  PyObject* ptr_ = nullptr;  // owned
};

}  // namespace pyfleet::internal
