// File: python_method_wrapper.h
//
// pyfleet::PythonMethodWrapper: a method of a ReplicatedObj as LibTorch's torch::IMethod,
// so code written against IMethod (TorchScript's or Python's) runs pyfleet models.
//
//   pyfleet::PythonMethodWrapper forward(package.loadPickle("model", "model.pkl"), "forward");
//   const torch::IMethod& method = forward;
//   c10::IValue y = method({at::ones({10, 20})});
//   method.getArgumentNames();   // {"input"}: from the Python signature
#pragma once

#include <torch/imethod.h>

#include <string>
#include <vector>

#include "pyfleet/export.h"
#include "pyfleet/replicated_obj.h"

namespace pyfleet {

class PYFLEET_API PythonMethodWrapper : public torch::IMethod {
 public:
  PythonMethodWrapper(ReplicatedObj model, std::string method_name)
      : model_(std::move(model)), method_name_(std::move(method_name)) {}

  const std::string& name() const override { return method_name_; }

  // PythonMethodWrapper::operator()
  //
  // model.<name>(*args, **kwargs) on a free interpreter, the result as an IValue.
  c10::IValue operator()(std::vector<c10::IValue> args, const IValueMap& kwargs = IValueMap()) const override;

 private:
  // The names of the method's parameters, from inspect.signature (none: empty).
  void setArgumentNames(std::vector<std::string>& argument_names) const override;

  ReplicatedObj model_;
  std::string method_name_;
};

}  // namespace pyfleet
