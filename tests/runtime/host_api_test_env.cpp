// File: host_api_test_env.cpp — see host_api_test_env.h.
#include "tests/runtime/host_api_test_env.h"

namespace pyfleet::testing {

InterpreterManager& SharedManager() {
  static InterpreterManager* manager = new InterpreterManager(4);  // lives until exit
  return *manager;
}

Reference LoadReference(InterpreterManager& manager, const std::string& name) {
  InterpreterSession session = manager.acquireOne();
  c10::IValue all = session.global("torch", "load")({c10::IValue(std::string(PYFLEET_HOST_PACKAGES) + "/reference.pt")})
                        .toIValue();
  c10::IValue entry = all.toGenericDict().at(name);
  c10::impl::GenericDict fields = entry.toGenericDict();
  Reference r;
  for (const c10::IValue& a : fields.at("args").toTupleRef().elements()) r.args.push_back(a);
  for (const auto& kv : fields.at("kwargs").toGenericDict()) r.kwargs.emplace(kv.key().toStringRef(), kv.value());
  r.expected = fields.at("expected");
  return r;
}

void ExpectSameIValue(const c10::IValue& expected, const c10::IValue& actual, const std::string& where) {
  ASSERT_EQ(expected.tagKind(), actual.tagKind()) << "at " << where;
  if (expected.isTensor()) {
    const at::Tensor& e = expected.toTensor();
    const at::Tensor& a = actual.toTensor();
    ASSERT_EQ(e.sizes(), a.sizes()) << "at " << where;
    ASSERT_EQ(e.scalar_type(), a.scalar_type()) << "at " << where;
    EXPECT_TRUE(at::allclose(e, a, 1e-5, 1e-6)) << "at " << where << "\nexpected " << e << "\nactual " << a;
  } else if (expected.isTuple() || expected.isList()) {
    c10::ArrayRef<c10::IValue> e =
        expected.isTuple() ? c10::ArrayRef<c10::IValue>(expected.toTupleRef().elements()) : expected.toListRef();
    c10::ArrayRef<c10::IValue> a =
        actual.isTuple() ? c10::ArrayRef<c10::IValue>(actual.toTupleRef().elements()) : actual.toListRef();
    ASSERT_EQ(e.size(), a.size()) << "at " << where;
    for (size_t i = 0; i < e.size(); ++i) ExpectSameIValue(e[i], a[i], where + "[" + std::to_string(i) + "]");
  } else if (expected.isGenericDict()) {
    c10::impl::GenericDict e = expected.toGenericDict();
    c10::impl::GenericDict a = actual.toGenericDict();
    ASSERT_EQ(e.size(), a.size()) << "at " << where;
    for (const auto& kv : e) {
      ASSERT_TRUE(a.contains(kv.key())) << "at " << where << ": missing key " << kv.key();
      ExpectSameIValue(kv.value(), a.at(kv.key()), where + "[" + c10::toString(kv.key().type()) + "]");
    }
  } else {
    EXPECT_EQ(expected, actual) << "at " << where;
  }
}

}  // namespace pyfleet::testing
