// File: python_method_wrapper.cpp — see python_method_wrapper.h.
#include "pyfleet/python_method_wrapper.h"

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/src/ivalue_bridge.h"

namespace pyfleet {

c10::IValue PythonMethodWrapper::operator()(std::vector<c10::IValue> args, const IValueMap& kwargs) const {
  InterpreterSession session = model_.acquireSession();
  Obj method = session.self.attr(method_name_);
  return internal::CallReturningIValue(method, args.data(), args.size(), &kwargs);
}

void PythonMethodWrapper::setArgumentNames(std::vector<std::string>& argument_names) const {
  InterpreterSession session = model_.acquireSession();
  Obj method = session.self.attr(method_name_);
  c10::IValue names = session.global("GetArgumentNamesModule", "getArgumentNames")({method}).toIValue();
  if (names.isNone()) return;
  if (!names.isList()) {
    throw Error(absl::InternalError(absl::StrCat("GetArgumentNamesModule.getArgumentNames(", method_name_,
                                                 ") returned a ", names.tagKind(), ", not a list")));
  }
  for (const c10::IValue& name : names.toListRef()) argument_names.push_back(name.toStringRef());
}

}  // namespace pyfleet
