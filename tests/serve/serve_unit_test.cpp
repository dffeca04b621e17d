// pyfleet-serve's parts that need no interpreter: the JSON request reader and response
// writer, raw tensor contents, the command line, the error mapping and the dynamic
// batcher (with a fake runner). The server itself is tested end to end by the pytest
// suites next to this file.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/tools/serve/dynamic_batcher.h"
#include "runtime/tools/serve/http_frontend.h"
#include "runtime/tools/serve/json_codec.h"
#include "runtime/tools/serve/json_reader.h"
#include "runtime/tools/serve/serve_options.h"
#include "runtime/tools/serve/served_model.h"
#include "runtime/tools/serve/tensor_codec.h"

namespace pyfleet::serve {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<InferRequest> Parse(absl::string_view body) {
  InferRequest request;
  absl::Status status = ParseInferRequestJson(body, request);
  if (!status.ok()) return status;
  return request;
}

// ---- JsonReader ----------------------------------------------------------------------

TEST(JsonReaderTest, ReadsMembersElementsAndEscapes) {
  JsonReader r(R"( {"a": [1, -2.5e3, true], "s": "x\"\u00e9\ud83d\ude00", "n": null} )");
  ASSERT_TRUE(r.expect('{'));
  std::string key;
  ASSERT_TRUE(r.nextMember(key));
  EXPECT_EQ(key, "a");
  ASSERT_TRUE(r.expect('['));
  absl::string_view token;
  ASSERT_TRUE(r.nextElement());
  ASSERT_TRUE(r.readNumber(token));
  EXPECT_EQ(token, "1");
  ASSERT_TRUE(r.nextElement());
  ASSERT_TRUE(r.readNumber(token));
  EXPECT_EQ(token, "-2.5e3");
  ASSERT_TRUE(r.nextElement());
  bool b = false;
  ASSERT_TRUE(r.readBool(b));
  EXPECT_TRUE(b);
  EXPECT_FALSE(r.nextElement());
  ASSERT_TRUE(r.nextMember(key));
  std::string s;
  ASSERT_TRUE(r.readString(s));
  EXPECT_EQ(s, "x\"\xc3\xa9\xf0\x9f\x98\x80");
  ASSERT_TRUE(r.nextMember(key));
  EXPECT_EQ(r.skipValue(), "null");
  EXPECT_FALSE(r.nextMember(key));
  EXPECT_TRUE(r.expectEnd());
  EXPECT_TRUE(r.ok());
}

TEST(JsonReaderTest, RejectsMalformedText) {
  for (absl::string_view bad : {R"({"a": 1,})", R"([1 2])", R"({"a" 1})", R"("unterminated)", R"(01)", R"(1.)",
                                R"(-)", R"({"a": tru})", R"([1] x)", "\"\x01\"", R"("\x")", R"("\ud800")"}) {
    JsonReader r(bad);
    r.skipValue();
    r.expectEnd();
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("malformed JSON at byte")) << bad;
  }
}

TEST(JsonReaderTest, RefusesDeepNesting) {
  std::string deep(JsonReader::kMaxDepth + 2, '[');
  deep += std::string(JsonReader::kMaxDepth + 2, ']');
  JsonReader r(deep);
  r.skipValue();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("nested deeper than"));
}

// ---- the inference request (JSON) ----------------------------------------------------

TEST(InferRequestJsonTest, ReadsEveryFieldInAnyOrder) {
  absl::StatusOr<InferRequest> r = Parse(R"({
      "outputs": [{"name": "y", "parameters": {}}],
      "inputs": [{"data": [[1, 2], [3, 4.5]], "datatype": "FP32", "shape": [2, 2], "name": "x"},
                 {"name": "n", "shape": [3], "datatype": "INT64", "data": [-9007199254740993, 0, 7]}],
      "parameters": {"timeout": 300000, "other": [1, {"deep": true}]},
      "id": "req-1"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "req-1");
  EXPECT_EQ(r->timeout, std::chrono::microseconds(300000));
  EXPECT_EQ(r->requested_outputs, std::vector<std::string>{"y"});
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(r->inputs[0].name, "x");
  EXPECT_TRUE(at::equal(r->inputs[0].tensor, at::tensor({1.f, 2.f, 3.f, 4.5f}).reshape({2, 2})));
  EXPECT_EQ(r->inputs[1].tensor.scalar_type(), at::kLong);
  EXPECT_EQ(r->inputs[1].tensor[0].item<int64_t>(), -9007199254740993);  // exact, not via double
}

TEST(InferRequestJsonTest, EveryDatatype) {
  absl::StatusOr<InferRequest> r = Parse(R"({"inputs": [
      {"name": "b", "shape": [2], "datatype": "BOOL", "data": [true, false]},
      {"name": "u8", "shape": [2], "datatype": "UINT8", "data": [0, 255]},
      {"name": "i8", "shape": [2], "datatype": "INT8", "data": [-128, 127]},
      {"name": "i16", "shape": [1], "datatype": "INT16", "data": [-32768]},
      {"name": "i32", "shape": [1], "datatype": "INT32", "data": [2147483647]},
      {"name": "f16", "shape": [1], "datatype": "FP16", "data": [0.5]},
      {"name": "f64", "shape": [1], "datatype": "FP64", "data": [1e300]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<at::ScalarType> types = {at::kBool, at::kByte,  at::kChar,  at::kShort,
                                             at::kInt,  at::kHalf, at::kDouble};
  ASSERT_EQ(r->inputs.size(), types.size());
  for (size_t i = 0; i < types.size(); ++i) EXPECT_EQ(r->inputs[i].tensor.scalar_type(), types[i]) << i;
  EXPECT_EQ(r->inputs[1].tensor[1].item<uint8_t>(), 255);
  EXPECT_EQ(r->inputs[5].tensor[0].item<float>(), 0.5f);
}

TEST(InferRequestJsonTest, ErrorsSayWhatAndWhere) {
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"inputs": [)", "malformed JSON at byte"},
      {R"([1, 2])", "must be a JSON object"},
      {R"({"id": "x"})", "'inputs' must be an array"},
      {R"({"inputs": [{"name": "x", "shape": [2], "datatype": "FLOAT", "data": [1, 2]}]})",
       "unsupported datatype \"FLOAT\""},
      {R"({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]})",
       "the shape holds 3 elements, 'data' has 2"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1, 2]}]})",
       "the shape holds 1 elements, 'data' has more"},
      {R"({"inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 128]}]})",
       "data element 1 (128) is not a INT8"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]})",
       "data element 0 (1.5) is not a INT64"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["1"]}]})",
       "data element 0 (\"1\") is not a FP32"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]})",
       "data element 0 (1) is not a BOOL"},
      {R"({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": []}]})", "negative dimension"},
      {R"({"inputs": [{"name": "x", "shape": ["1"], "datatype": "FP32", "data": [1]}]})",
       "'shape' must be an array of integers"},
      {R"({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]})", "inputs[0]: 'name' must be a string"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]})", "input 'x': no 'data'"},
      {R"({"inputs": [], "parameters": {"timeout": -1}})", "'timeout' must be a non-negative integer"},
      {R"({"inputs": [], "outputs": ["y"]})", "each of 'outputs' must be an object"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<InferRequest> r = Parse(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.body;
  }
}

TEST(InferResponseJsonTest, FloatsRoundTripExactly) {
  const at::Tensor y = at::tensor({0.1f, -3.4028235e38f, 1e-45f, 7.0f}).reshape({2, 2});
  InferOutputs outputs;
  outputs.tensors.push_back({"y", y});
  outputs.tensors.push_back({"flags", at::tensor({1, 0}).to(at::kBool)});
  const std::string body = InferResponseJson("m", "1", "id\"1", outputs);
  EXPECT_THAT(body, HasSubstr(R"("model_name":"m","model_version":"1","id":"id\"1")"));
  EXPECT_THAT(body, HasSubstr(R"("datatype":"BOOL","shape":[2],"data":[true,false])"));
  // Read back as a request (the same JSON form): the very same floats.
  const std::string as_request =
      absl::StrCat(R"({"inputs": [)", body.substr(body.find(R"({"name":"y")"), body.find(R"(,{"name":"flags")") -
                                                                                   body.find(R"({"name":"y")")),
                   "]}");
  absl::StatusOr<InferRequest> back = Parse(as_request);
  ASSERT_TRUE(back.ok()) << back.status() << as_request;
  EXPECT_TRUE(at::equal(back->inputs[0].tensor, y));
}

TEST(InferResponseJsonTest, NonFiniteFloatsAreNull) {
  InferOutputs outputs;
  outputs.tensors.push_back({"y", at::tensor({std::numeric_limits<float>::infinity(), NAN})});
  EXPECT_THAT(InferResponseJson("m", "1", "", outputs), HasSubstr(R"("data":[null,null])"));
}

// ---- raw contents --------------------------------------------------------------------

TEST(TensorCodecTest, RawRoundTripAndSizeCheck) {
  const at::Tensor x = at::arange(6, at::kInt).reshape({2, 3});
  const std::string raw = TensorToRaw(x.t());  // non-contiguous: row-major of the view
  absl::StatusOr<at::Tensor> back = TensorFromRaw(DataType::kInt32, {3, 2}, raw, "x");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(at::equal(*back, x.t().contiguous()));
  absl::StatusOr<at::Tensor> bad = TensorFromRaw(DataType::kInt32, {4}, raw, "x");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("needs 16 bytes of raw contents, got 24"));
}

TEST(TensorCodecTest, DatatypeNames) {
  for (const char* name : {"BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}) {
    std::optional<DataType> t = ParseDataType(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_STREQ(DataTypeName(*t), name);
    EXPECT_EQ(DataTypeOf(ScalarTypeOf(*t)), t);
  }
  EXPECT_FALSE(ParseDataType("BYTES").has_value());
  EXPECT_FALSE(ParseDataType("fp32").has_value());
  EXPECT_FALSE(DataTypeOf(at::kBFloat16).has_value());
}

// ---- command line --------------------------------------------------------------------

absl::StatusOr<ServeOptions> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "pyfleet-serve");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseServeOptions(argv);
}

TEST(ServeOptionsTest, ParsesEveryFlag) {
  absl::StatusOr<ServeOptions> o = ParseArgs(
      {"--model", "a=/x/a.pt", "--model=b=/x/b=c.pt", "--batch", "b=8:2000", "--interpreters=3", "--host", "0.0.0.0",
       "--http-port", "0", "--grpc-port=-1", "--max-queue", "5", "--timeout-ms", "0", "--max-body-bytes=100",
       "--access-log", "--http-threads", "16", "--torch-threads", "2", "--drain-timeout-ms", "10"});
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->models.size(), 2u);
  EXPECT_EQ(o->models[1].path, "/x/b=c.pt");
  EXPECT_EQ(o->batch.at("b").max_batch, 8);
  EXPECT_EQ(o->batch.at("b").max_delay, std::chrono::microseconds(2000));
  EXPECT_EQ(o->interpreters, 3u);
  EXPECT_EQ(o->host, "0.0.0.0");
  EXPECT_EQ(o->http_port, 0);
  EXPECT_EQ(o->grpc_port, -1);
  EXPECT_EQ(o->max_queue, 5u);
  EXPECT_EQ(o->timeout, std::chrono::milliseconds(0));
  EXPECT_EQ(o->max_body_bytes, 100u);
  EXPECT_EQ(o->access_log, "-");
  EXPECT_EQ(o->http_threads, 16u);
  EXPECT_EQ(o->torch_threads, 2);
  EXPECT_EQ(o->drain_timeout, std::chrono::milliseconds(10));
  EXPECT_EQ(ParseArgs({"--model", "a=a.pt", "--access-log=/tmp/log"})->access_log, "/tmp/log");
  EXPECT_TRUE(ParseArgs({"--help"})->help);
}

TEST(ServeOptionsTest, RefusesBadCommandLines) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{}, "no --model"},
      {{"--model", "a"}, "--model: expected NAME=PACKAGE"},
      {{"--model", "a b=x.pt"}, "model name 'a b'"},
      {{"--model", "a=x.pt", "--model", "a=y.pt"}, "given twice"},
      {{"--model", "a=x.pt", "--batch", "b=8:10"}, "no --model named 'b'"},
      {{"--model", "a=x.pt", "--batch", "a=0:10"}, "MAX_BATCH"},
      {{"--model", "a=x.pt", "--http-port", "70000"}, "--http-port: expected an integer in [-1, 65535]"},
      {{"--model", "a=x.pt", "--interpreters"}, "--interpreters: needs a value"},
      {{"--model", "a=x.pt", "--frobnicate", "1"}, "unknown flag --frobnicate"},
      {{"--model", "a=x.pt", "stray"}, "unexpected argument 'stray'"},
      {{"--model", "a=x.pt", "--http-port", "-1", "--grpc-port", "-1"}, "nothing to serve on"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ServeOptions> o = ParseArgs(c.args);
    ASSERT_FALSE(o.ok()) << c.message;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.message));
  }
}

// ---- error mapping -------------------------------------------------------------------

TEST(ErrorMappingTest, PythonErrorsAreUnknownWithTypeAndMessage) {
  absl::Status python(absl::StatusCode::kNotFound, "[interpreter 1] 'too big'");  // a KeyError
  python.SetPayload(kPythonTypePayload, absl::Cord("builtins.KeyError"));
  const absl::Status s = StatusFromError("m", Error(python));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "model 'm' raised KeyError: 'too big'");
  EXPECT_EQ(HttpStatusFor(s.code()), 400);
  const absl::Status full = StatusFromError("m", Error(absl::ResourceExhaustedError("queue")));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(HttpStatusFor(full.code()), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
}

// ---- dynamic batching ----------------------------------------------------------------

// A runner that answers each batch on another thread with `input * 2` (or an error), and
// records the batch sizes it saw.
class FakeRunner {
 public:
  explicit FakeRunner(std::chrono::milliseconds run_time = std::chrono::milliseconds(0)) : run_time_(run_time) {}
  ~FakeRunner() {
    for (std::thread& t : threads_) t.join();
  }
  DynamicBatcher::Runner runner() {
    return [this](std::vector<at::Tensor> inputs, Clock::time_point, DynamicBatcher::Done done) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        rows_.push_back(inputs[0].size(0));
      }
      std::lock_guard<std::mutex> lock(mu_);
      threads_.emplace_back([this, inputs, done] {
        std::this_thread::sleep_for(run_time_);
        if (fail_) {
          done(absl::InternalError("boom"));
        } else {
          done(std::vector<at::Tensor>{inputs[0] * 2});
        }
      });
    };
  }
  std::vector<int64_t> rows() {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_;
  }
  std::atomic<bool> fail_{false};

 private:
  std::chrono::milliseconds run_time_;
  std::mutex mu_;
  std::vector<int64_t> rows_;
  std::vector<std::thread> threads_;
};

using Result = absl::StatusOr<std::vector<at::Tensor>>;

std::future<Result> Enqueue(DynamicBatcher& batcher, at::Tensor x,
                            Clock::time_point deadline = Clock::time_point::max()) {
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> f = promise->get_future();
  batcher.enqueue({x}, x.size(0), deadline, [promise](Result r) { promise->set_value(std::move(r)); });
  return f;
}

TEST(DynamicBatcherTest, JoinsConcurrentRequestsAndSplitsTheAnswers) {
  FakeRunner fake;
  {
    DynamicBatcher batcher("m", {4, std::chrono::milliseconds(200)}, 100, 1, fake.runner());
    std::vector<std::future<Result>> futures;
    for (int i = 0; i < 4; ++i) futures.push_back(Enqueue(batcher, at::full({1, 2}, i)));
    for (int i = 0; i < 4; ++i) {
      Result r = futures[static_cast<size_t>(i)].get();
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(at::equal((*r)[0], at::full({1, 2}, 2 * i))) << i;
    }
    EXPECT_EQ(batcher.batchSizeCounts()[4], 1u);
  }
  EXPECT_EQ(fake.rows(), std::vector<int64_t>{4});  // full: left at once, not after 200 ms
}

TEST(DynamicBatcherTest, LeavesAfterTheDelayWhenNotFull) {
  FakeRunner fake;
  DynamicBatcher batcher("m", {8, std::chrono::milliseconds(30)}, 100, 1, fake.runner());
  const auto start = Clock::now();
  Result r = Enqueue(batcher, at::ones({2, 3})).get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].sizes(), at::IntArrayRef({2, 3}));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(25));
}

TEST(DynamicBatcherTest, GathersWhileEveryRunnerIsBusy) {
  FakeRunner fake(std::chrono::milliseconds(150));
  DynamicBatcher batcher("m", {16, std::chrono::microseconds(0)}, 100, 1, fake.runner());
  std::vector<std::future<Result>> futures;
  futures.push_back(Enqueue(batcher, at::ones({1, 1})));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the first batch runs
  for (int i = 0; i < 5; ++i) futures.push_back(Enqueue(batcher, at::ones({1, 1})));
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  EXPECT_EQ(fake.rows(), (std::vector<int64_t>{1, 5}));
}

TEST(DynamicBatcherTest, LargeRequestRunsAloneAndCountsAsMore) {
  FakeRunner fake;
  DynamicBatcher batcher("m", {4, std::chrono::milliseconds(1)}, 100, 1, fake.runner());
  Result r = Enqueue(batcher, at::ones({6, 1})).get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].size(0), 6);
  EXPECT_EQ(batcher.batchSizeCounts()[0], 1u);
}

TEST(DynamicBatcherTest, DeadlinesQueueLimitAndShutdown) {
  FakeRunner fake(std::chrono::milliseconds(300));
  DynamicBatcher batcher("m", {1, std::chrono::microseconds(0)}, 1, 1, fake.runner());
  std::future<Result> running = Enqueue(batcher, at::ones({1, 1}));  // runs 300 ms
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto start = Clock::now();
  std::future<Result> waiting = Enqueue(batcher, at::ones({1, 1}), Clock::now() + std::chrono::milliseconds(50));
  std::future<Result> refused = Enqueue(batcher, at::ones({1, 1}));  // the queue holds one already
  EXPECT_EQ(refused.get().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(waiting.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(250));  // on time, not after the batch
  std::future<Result> dropped = Enqueue(batcher, at::ones({1, 1}));
  batcher.shutdown();  // waits for the running batch
  EXPECT_TRUE(running.get().ok());
  EXPECT_EQ(dropped.get().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Enqueue(batcher, at::ones({1, 1})).get().status().code(), absl::StatusCode::kUnavailable);
}

TEST(DynamicBatcherTest, ABatchErrorReachesEveryMember) {
  FakeRunner fake;
  fake.fail_ = true;
  DynamicBatcher batcher("m", {2, std::chrono::milliseconds(100)}, 100, 1, fake.runner());
  std::future<Result> a = Enqueue(batcher, at::ones({1, 1}));
  std::future<Result> b = Enqueue(batcher, at::ones({1, 1}));
  EXPECT_THAT(std::string(a.get().status().message()), HasSubstr("boom"));
  EXPECT_THAT(std::string(b.get().status().message()), HasSubstr("boom"));
}

}  // namespace
}  // namespace pyfleet::serve
