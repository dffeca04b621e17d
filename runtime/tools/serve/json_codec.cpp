// File: json_codec.cpp — see json_codec.h.
#include "runtime/tools/serve/json_codec.h"

#include <ATen/ATen.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <system_error>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/tools/serve/json_reader.h"
#include "runtime/tools/serve/tensor_codec.h"

namespace pyfleet::serve {
namespace {

using Json = nlohmann::json;

// What Python's float() gives for a number token beyond double's range: +-inf for an
// overflow, +-0 for an underflow (a negative exponent, or "0.000...").
double OutOfRange(absl::string_view token) {
  const bool negative = token[0] == '-';
  const size_t e = token.find_first_of("eE");
  const bool underflow = e != absl::string_view::npos ? token.substr(e + 1, 1) == "-"
                                                      : absl::StartsWith(token.substr(negative ? 1 : 0), "0");
  if (underflow) return negative ? -0.0 : 0.0;
  return negative ? -HUGE_VAL : HUGE_VAL;
}

// Reads the numbers of a 'data' value (`span`: flat or nested arrays, already checked to
// be well-formed JSON) into `out`, checking each against `type`; `count` is what the
// shape promises.
template <typename T>
class DataReader {
 public:
  DataReader(absl::string_view span, DataType type, const std::string& input, T* out, int64_t count)
      : reader_(span), type_(type), input_(input), out_(out), count_(count) {}

  absl::Status read() {
    if (reader_.peek() != '[') {
      return absl::InvalidArgumentError(absl::StrCat("input '", input_, "': 'data' must be an array"));
    }
    absl::Status status = walk();
    if (!status.ok()) return status;
    if (written_ != count_) return countMismatch(false);
    return absl::OkStatus();
  }

 private:
  absl::Status walk() {
    reader_.expect('[');
    while (reader_.nextElement()) {
      if (reader_.peek() == '[') {
        absl::Status status = walk();
        if (!status.ok()) return status;
        continue;
      }
      if (written_ == count_) return countMismatch(true);
      absl::Status status = put();
      if (!status.ok()) return status;
    }
    return reader_.status();
  }

  absl::Status countMismatch(bool more) const {
    return absl::InvalidArgumentError(absl::StrCat("input '", input_, "': the shape holds ", count_,
                                                   " elements, 'data' has ", more ? "more" : absl::StrCat(written_)));
  }

  absl::Status notA(absl::string_view text) const {
    if (text.size() > 40) text = text.substr(0, 40);
    return absl::InvalidArgumentError(absl::StrCat("input '", input_, "': data element ", written_, " (", text,
                                                   ") is not a ", DataTypeName(type_)));
  }

  absl::Status put() {
    const char c = reader_.peek();
    const bool is_number = c == '-' || (c >= '0' && c <= '9');
    if constexpr (std::is_same_v<T, bool>) {
      bool v = false;
      if (c != 't' && c != 'f') return notA(reader_.skipValue());
      if (!reader_.readBool(v)) return reader_.status();
      out_[written_++] = v;
    } else {
      if (!is_number) return notA(reader_.skipValue());
      absl::string_view token;
      if (!reader_.readNumber(token)) return reader_.status();
      const char* first = token.data();
      const char* last = token.data() + token.size();
      if constexpr (std::is_integral_v<T>) {
        if (token.find_first_of(".eE") != absl::string_view::npos) return notA(token);
        int64_t v = 0;
        auto [end, ec] = std::from_chars(first, last, v);
        if (ec != std::errc() || end != last || v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            v > static_cast<int64_t>(std::numeric_limits<T>::max())) {
          return notA(token);
        }
        out_[written_++] = static_cast<T>(v);
      } else {
        // As Python does it: the nearest double, then the element type.
        double v = 0;
        auto [end, ec] = std::from_chars(first, last, v);
        if (ec == std::errc::result_out_of_range) {
          v = OutOfRange(token);
        } else if (ec != std::errc() || end != last) {
          return notA(token);
        }
        out_[written_++] = static_cast<T>(v);
      }
    }
    return absl::OkStatus();
  }

  JsonReader reader_;
  DataType type_;
  const std::string& input_;
  T* out_;
  int64_t count_;
  int64_t written_ = 0;
};

template <typename T>
absl::Status ReadData(absl::string_view span, DataType type, const std::string& input, at::Tensor& tensor) {
  return DataReader<T>(span, type, input, tensor.data_ptr<T>(), tensor.numel()).read();
}

// One member of "inputs": {"name", "shape", "datatype", "data", "parameters"} in any order.
absl::StatusOr<NamedTensor> ParseInput(JsonReader& r, size_t index) {
  const std::string where = absl::StrCat("inputs[", index, "]");
  if (r.peek() != '{') {
    r.skipValue();
    return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
  }
  r.expect('{');
  std::string key;
  std::optional<std::string> name, datatype;
  std::optional<std::vector<int64_t>> shape;
  absl::string_view data;
  bool bad_shape = false, bad_name = false, bad_datatype = false;
  while (r.nextMember(key)) {
    if (key == "name" || key == "datatype") {
      std::string value;
      if (r.peek() != '"') {
        r.skipValue();
        (key == "name" ? bad_name : bad_datatype) = true;
        continue;
      }
      if (!r.readString(value)) break;
      (key == "name" ? name : datatype) = std::move(value);
    } else if (key == "shape") {
      if (r.peek() != '[') {
        r.skipValue();
        bad_shape = true;
        continue;
      }
      shape.emplace();
      r.expect('[');
      while (r.nextElement()) {
        absl::string_view token;
        const char c = r.peek();
        if (c != '-' && (c < '0' || c > '9')) {
          r.skipValue();
          bad_shape = true;
          continue;
        }
        if (!r.readNumber(token)) break;
        int64_t d = 0;
        auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
        if (ec != std::errc() || end != token.data() + token.size()) bad_shape = true;
        shape->push_back(d);
      }
    } else if (key == "data") {
      data = r.skipValue();
    } else {
      r.skipValue();  // "parameters" and anything else
    }
  }
  if (!r.ok()) return r.status();
  if (!name || bad_name) return absl::InvalidArgumentError(absl::StrCat(where, ": 'name' must be a string"));
  const std::string& n = *name;
  if (!datatype || bad_datatype) {
    return absl::InvalidArgumentError(absl::StrCat("input '", n, "': 'datatype' must be a string"));
  }
  std::optional<DataType> type = ParseDataType(*datatype);
  if (!type) {
    return absl::InvalidArgumentError(absl::StrCat("input '", n, "': unsupported datatype \"", *datatype,
                                                   "\" (one of BOOL, UINT8, INT8, INT16, INT32, INT64, FP16, FP32, FP64)"));
  }
  if (!shape || bad_shape) {
    return absl::InvalidArgumentError(absl::StrCat("input '", n, "': 'shape' must be an array of integers"));
  }
  absl::StatusOr<int64_t> count = ElementCount(*shape, absl::StrCat("input '", n, "'"));
  if (!count.ok()) return count.status();
  if (data.empty()) return absl::InvalidArgumentError(absl::StrCat("input '", n, "': no 'data'"));
  at::Tensor tensor = at::empty(*shape, at::TensorOptions().dtype(ScalarTypeOf(*type)));
  absl::Status status;
  switch (*type) {
    case DataType::kBool: status = ReadData<bool>(data, *type, n, tensor); break;
    case DataType::kUint8: status = ReadData<uint8_t>(data, *type, n, tensor); break;
    case DataType::kInt8: status = ReadData<int8_t>(data, *type, n, tensor); break;
    case DataType::kInt16: status = ReadData<int16_t>(data, *type, n, tensor); break;
    case DataType::kInt32: status = ReadData<int32_t>(data, *type, n, tensor); break;
    case DataType::kInt64: status = ReadData<int64_t>(data, *type, n, tensor); break;
    case DataType::kFp16: status = ReadData<at::Half>(data, *type, n, tensor); break;
    case DataType::kFp32: status = ReadData<float>(data, *type, n, tensor); break;
    case DataType::kFp64: status = ReadData<double>(data, *type, n, tensor); break;
  }
  if (!status.ok()) return status;
  return NamedTensor{n, std::move(tensor)};
}

// Appends `v` in the shortest form that reads back as the same double; JSON has no NaN or
// infinity, so those are null (as nlohmann::json writes them).
void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  out.append(buffer, end);
}

void AppendInteger(std::string& out, int64_t v) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  out.append(buffer, end);
}

template <typename T>
void AppendData(std::string& out, const at::Tensor& t) {
  const T* p = t.data_ptr<T>();
  const int64_t n = t.numel();
  out.reserve(out.size() + static_cast<size_t>(n) * (std::is_floating_point_v<T> ? 12 : 4));
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    if constexpr (std::is_same_v<T, bool>) {
      out += p[i] ? "true" : "false";
    } else if constexpr (std::is_integral_v<T>) {
      AppendInteger(out, static_cast<int64_t>(p[i]));
    } else {
      AppendNumber(out, static_cast<double>(p[i]));
    }
  }
}

void AppendTensor(std::string& out, const NamedTensor& named) {
  const at::Tensor t = named.tensor.contiguous();
  const DataType type = DataTypeOf(t.scalar_type()).value_or(DataType::kFp32);
  out += "{\"name\":";
  out += JsonString(named.name);
  out += ",\"datatype\":\"";
  out += DataTypeName(type);
  out += "\",\"shape\":[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d > 0) out += ',';
    AppendInteger(out, t.size(d));
  }
  out += "],\"data\":[";
  switch (type) {
    case DataType::kBool: AppendData<bool>(out, t); break;
    case DataType::kUint8: AppendData<uint8_t>(out, t); break;
    case DataType::kInt8: AppendData<int8_t>(out, t); break;
    case DataType::kInt16: AppendData<int16_t>(out, t); break;
    case DataType::kInt32: AppendData<int32_t>(out, t); break;
    case DataType::kInt64: AppendData<int64_t>(out, t); break;
    case DataType::kFp16: AppendData<at::Half>(out, t); break;
    case DataType::kFp32: AppendData<float>(out, t); break;
    case DataType::kFp64: AppendData<double>(out, t); break;
  }
  out += "]}";
}

Json SpecJson(const TensorSpec& spec) {
  return Json{{"name", spec.name}, {"datatype", DataTypeName(spec.datatype)}, {"shape", spec.shape}};
}

}  // namespace

absl::Status ParseInferRequestJson(absl::string_view body, InferRequest& request) {
  JsonReader r(body);
  if (r.peek() != '{') {
    r.skipValue();
    if (!r.ok()) return r.status();
    return absl::InvalidArgumentError("the request must be a JSON object");
  }
  r.expect('{');
  std::string key;
  // Every member is read (the text checked) before the request is judged.
  absl::Status judged;
  auto judge = [&](absl::Status s) {
    if (judged.ok()) judged = std::move(s);
  };
  bool have_inputs = false;
  while (r.nextMember(key)) {
    if (key == "id") {
      if (r.peek() != '"') {
        r.skipValue();
        judge(absl::InvalidArgumentError("'id' must be a string"));
      } else {
        r.readString(request.id);
      }
    } else if (key == "parameters") {
      if (r.peek() != '{') {
        r.skipValue();
        judge(absl::InvalidArgumentError("'parameters' must be an object"));
        continue;
      }
      r.expect('{');
      std::string parameter;
      while (r.nextMember(parameter)) {
        if (parameter != "timeout") {
          r.skipValue();
          continue;
        }
        const char c = r.peek();
        absl::string_view token;
        int64_t us = -1;
        if (c >= '0' && c <= '9' && r.readNumber(token)) {
          auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), us);
          if (ec != std::errc() || end != token.data() + token.size()) us = -1;
        } else {
          r.skipValue();
        }
        if (us < 0) {
          judge(absl::InvalidArgumentError("parameter 'timeout' must be a non-negative integer (microseconds)"));
        } else {
          request.timeout = std::chrono::microseconds(us);
        }
      }
    } else if (key == "inputs") {
      if (r.peek() != '[') {
        r.skipValue();
        judge(absl::InvalidArgumentError("'inputs' must be an array of tensors"));
        continue;
      }
      have_inputs = true;
      r.expect('[');
      size_t index = 0;
      while (r.nextElement()) {
        absl::StatusOr<NamedTensor> input = ParseInput(r, index++);
        if (!r.ok()) return r.status();
        if (!input.ok()) {
          judge(input.status());
        } else {
          request.inputs.push_back(*std::move(input));
        }
      }
    } else if (key == "outputs") {
      if (r.peek() != '[') {
        r.skipValue();
        judge(absl::InvalidArgumentError("'outputs' must be an array"));
        continue;
      }
      r.expect('[');
      while (r.nextElement()) {
        bool named = false;
        if (r.peek() == '{') {
          r.expect('{');
          std::string member;
          while (r.nextMember(member)) {
            if (member == "name" && r.peek() == '"') {
              std::string name;
              r.readString(name);
              request.requested_outputs.push_back(std::move(name));
              named = true;
            } else {
              r.skipValue();
            }
          }
        } else {
          r.skipValue();
        }
        if (!named) judge(absl::InvalidArgumentError("each of 'outputs' must be an object with a string 'name'"));
      }
    } else {
      r.skipValue();
    }
  }
  r.expectEnd();
  if (!r.ok()) return r.status();
  if (!judged.ok()) return judged;
  if (!have_inputs) return absl::InvalidArgumentError("'inputs' must be an array of tensors");
  return absl::OkStatus();
}

std::string InferResponseJson(absl::string_view model, absl::string_view version, absl::string_view id,
                              const InferOutputs& outputs) {
  std::string out = "{\"model_name\":";
  out += JsonString(model);
  out += ",\"model_version\":";
  out += JsonString(version);
  if (!id.empty()) {
    out += ",\"id\":";
    out += JsonString(id);
  }
  out += ",\"outputs\":[";
  for (size_t i = 0; i < outputs.tensors.size(); ++i) {
    if (i > 0) out += ',';
    AppendTensor(out, outputs.tensors[i]);
  }
  out += "]}";
  return out;
}

std::string ModelMetadataJson(const ModelMetadata& metadata) {
  Json inputs = Json::array();
  for (const TensorSpec& spec : metadata.inputs) inputs.push_back(SpecJson(spec));
  Json outputs = Json::array();
  for (const TensorSpec& spec : metadata.outputs) outputs.push_back(SpecJson(spec));
  return Json{{"name", metadata.name},
              {"versions", metadata.versions},
              {"platform", metadata.platform},
              {"inputs", inputs},
              {"outputs", outputs}}
      .dump();
}

std::string ErrorJson(absl::string_view message) { return absl::StrCat("{\"error\":", JsonString(message), "}"); }

std::string JsonString(absl::string_view text) {
  // Invalid UTF-8 (from a request's own strings) is replaced, not an exception.
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace pyfleet::serve
