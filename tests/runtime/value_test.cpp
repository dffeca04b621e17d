// File: value_test.cpp
//
// pyfleet::Value's constructors: every C++ integer and floating-point type either works
// or fails to compile, never silently picks a surprising overload.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "pyfleet/value.h"
#include "pyfleet/error.h"

namespace pyfleet {
namespace {

static_assert(std::is_constructible_v<Value, size_t>);
static_assert(std::is_constructible_v<Value, long long>);
static_assert(std::is_constructible_v<Value, unsigned>);
static_assert(std::is_constructible_v<Value, unsigned char>);
static_assert(std::is_constructible_v<Value, short>);
static_assert(std::is_constructible_v<Value, float>);
static_assert(std::is_constructible_v<Value, long double>);
static_assert(!std::is_constructible_v<Value, std::nullptr_t>, "nullptr is neither None nor a string");
static_assert(!std::is_constructible_v<Value, int*>, "a pointer must not silently become a bool");
static_assert(!std::is_constructible_v<Value, const void*>);

TEST(ValueTest, EveryIntegerTypeIsAPythonInt) {
  EXPECT_EQ(Value(size_t{5}).toInt(), 5);
  EXPECT_EQ(Value(3u).toInt(), 3);
  EXPECT_EQ(Value(-7LL).toInt(), -7);
  EXPECT_EQ(Value(static_cast<short>(-2)).toInt(), -2);
  EXPECT_EQ(Value(std::numeric_limits<int64_t>::min()).toInt(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(Value(uint64_t{std::numeric_limits<int64_t>::max()}).toInt(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Value('a').toInt(), 97);
  EXPECT_STREQ(Value(size_t{1}).typeName(), "int");
}

TEST(ValueTest, UnsignedAboveInt64IsOutOfRange) {
  try {
    Value v(std::numeric_limits<uint64_t>::max());
    FAIL() << "no error for " << v.toInt();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kOutOfRange);
  }
}

TEST(ValueTest, FloatingTypesAndTheRest) {
  EXPECT_DOUBLE_EQ(Value(2.5f).toDouble(), 2.5);
  EXPECT_DOUBLE_EQ(Value(0.25L).toDouble(), 0.25);
  EXPECT_TRUE(Value(true).toBool());
  EXPECT_EQ(Value("text").toString(), "text");
  EXPECT_EQ(Value(std::string_view("view")).toString(), "view");
  EXPECT_TRUE(Value().isNone());
  const char* null_string = nullptr;
  try {
    Value v(null_string);
    FAIL() << v.typeName();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  }
  try {
    (void)Value(1).toString();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("expected a value of type str, got int"), std::string::npos);
  }
}

}  // namespace
}  // namespace pyfleet
