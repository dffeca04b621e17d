// File: http_frontend.cpp — see http_frontend.h.
#include "runtime/tools/serve/http_frontend.h"

#include <httplib.h>
#include <sys/socket.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "pyfleet/error.h"
#include "runtime/tools/serve/json_codec.h"

namespace pyfleet::serve {
namespace {

constexpr char kJson[] = "application/json";

// What the access log and the metrics need of the request a connection thread serves,
// set by the pre-routing handler and the handlers, read by the logger (which cpp-httplib
// calls on the same thread once the response is written).
struct RequestNotes {
  Clock::time_point start;
  bool started = false;
  std::string model;  // a served model's name, for inference requests
  std::string id;
  std::string error;
  absl::StatusCode code = absl::StatusCode::kOk;
};
thread_local RequestNotes notes;

const char* ReasonFor(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
    case 416: return "range not satisfiable";
    case 500: return "internal server error";
    default: return "error";
  }
}

absl::StatusCode CodeForHttp(int status) {
  if (status < 400) return absl::StatusCode::kOk;
  switch (status) {
    case 404: return absl::StatusCode::kNotFound;
    case 413: return absl::StatusCode::kResourceExhausted;
    case 503: return absl::StatusCode::kUnavailable;
    case 504: return absl::StatusCode::kDeadlineExceeded;
    default: return status < 500 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal;
  }
}

void Reply(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), kJson);
}

void ReplyError(httplib::Response& res, const absl::Status& status) {
  notes.error = std::string(status.message());
  notes.code = status.code();
  Reply(res, HttpStatusFor(status.code()), ErrorJson(status.message()));
}

std::string Match(const httplib::Request& req, size_t i) {
  return i < req.matches.size() && req.matches[i].matched ? req.matches[i].str() : std::string();
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnknown:  // the model raised (the protocol's "inference failed")
      return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
      return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

// cpp-httplib's server, with a listen backlog fit for many clients: the library listens
// with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's shared library),
// so a burst of connections would see SYNs dropped and retried a second later. Calling
// listen() again on the bound socket raises it.
class HttpFrontend::Server : public httplib::Server {
 public:
  void raiseBacklog() { ::listen(svr_sock_, SOMAXCONN); }
};

HttpFrontend::HttpFrontend(ServerContext& context, HttpOptions options)
    : context_(context), options_(options), server_(std::make_unique<Server>()),
      done_(std::make_shared<std::atomic<bool>>(false)) {
  const size_t threads = std::max<size_t>(options_.threads, 2);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);  // responses go out in several writes: no Nagle delay
  server_->set_keep_alive_max_count(std::numeric_limits<int>::max());
  server_->set_payload_max_length(options_.max_body_bytes);
  routes();
}

HttpFrontend::~HttpFrontend() {
  stop();
  if (thread_.joinable()) thread_.join();
}

int HttpFrontend::bind(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
  } else if (!server_->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    throw Error(absl::UnavailableError(absl::StrCat("HTTP: cannot listen on ", host, ":", port,
                                                    " (in use, or not an address of this machine)")));
  }
  server_->raiseBacklog();
  return bound;
}

void HttpFrontend::start() {
  thread_ = std::thread([server = server_.get(), done = done_] {
    server->listen_after_bind();  // returns once stopped and every connection thread is done
    done->store(true, std::memory_order_release);
  });
}

void HttpFrontend::stop() {
  if (server_->is_running()) server_->stop();
}

bool HttpFrontend::waitStopped(std::chrono::steady_clock::time_point deadline) {
  while (!done_->load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (thread_.joinable()) thread_.join();
  return true;
}

void HttpFrontend::routes() {
  ServerContext& ctx = context_;
  Server& svr = *server_;

  svr.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    notes = RequestNotes();
    notes.start = Clock::now();
    notes.started = true;
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Errors cpp-httplib answers itself (no route, body too large, malformed request)
  // get the protocol's error body too.
  const size_t max_body = options_.max_body_bytes;
  svr.set_error_handler(httplib::Server::HandlerWithResponse([max_body](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    if (res.status == 404) {
      message = absl::StrCat("no route for ", req.method, " ", req.path);
    } else if (res.status == 413) {
      message = absl::StrCat("the request body is larger than --max-body-bytes (", max_body, " bytes)");
    } else {
      message = ReasonFor(res.status);
    }
    notes.error = message;
    notes.code = CodeForHttp(res.status);
    res.set_content(ErrorJson(message), kJson);
    return httplib::Server::HandlerResponse::Handled;
  }));

  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(res, absl::InternalError(what));
  });

  svr.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
    ctx.metrics->recordHttpResponse(res.status);
    if (ctx.access_log != nullptr) {
      AccessLog::Entry e;
      e.protocol = "http";
      e.method = req.method;
      e.path = req.path;
      e.model = notes.model;
      e.status = res.status;
      e.code = absl::StatusCodeToString(res.status < 400 ? absl::StatusCode::kOk
                                        : notes.code != absl::StatusCode::kOk ? notes.code
                                                                               : CodeForHttp(res.status));
      e.seconds = notes.started ? std::chrono::duration<double>(Clock::now() - notes.start).count() : 0;
      e.bytes_in = req.body.size();
      e.bytes_out = res.body.size();
      e.remote = absl::StrCat(req.remote_addr, ":", req.remote_port);
      e.id = notes.id;
      e.error = notes.error;
      ctx.access_log->write(e);
    }
    notes = RequestNotes();
  });

  svr.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, R"({"live":true})");
  });

  svr.Get("/v2/health/ready", [&ctx](const httplib::Request&, httplib::Response& res) {
    const absl::Status ready = ctx.repository.ready();
    if (ready.ok()) {
      Reply(res, 200, R"({"ready":true})");
    } else {
      // The protocol's health answers are booleans by status: 200 true, 4xx false.
      notes.error = std::string(ready.message());
      notes.code = ready.code();
      Reply(res, 400, absl::StrCat(R"({"ready":false,"error":)", JsonString(ready.message()), "}"));
    }
  });

  svr.Get(R"(/v2/?)", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, absl::StrCat(R"({"name":")", kServerName, R"(","version":")", kServerVersion,
                                 R"(","extensions":[]})"));
  });

  svr.Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<const ServedModel*> model = ctx.repository.find(Match(req, 1), Match(req, 2));
    if (!model.ok()) return ReplyError(res, model.status());
    notes.model = (*model)->name();
    if ((*model)->state() != ServedModel::State::kReady) {
      return ReplyError(res, absl::UnavailableError(absl::StrCat(
                                 "model '", (*model)->name(), "' is not ready",
                                 (*model)->state() == ServedModel::State::kFailed
                                     ? absl::StrCat(": it failed to load: ", (*model)->failure())
                                     : std::string())));
    }
    Reply(res, 200, ModelMetadataJson((*model)->metadata()));
  });

  svr.Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/ready)",
          [&ctx](const httplib::Request& req, httplib::Response& res) {
            absl::StatusOr<const ServedModel*> model = ctx.repository.find(Match(req, 1), Match(req, 2));
            if (!model.ok()) return ReplyError(res, model.status());
            const ServedModel& m = **model;
            notes.model = m.name();
            std::string head = absl::StrCat(R"({"name":)", JsonString(m.name()), R"(,"version":)",
                                            JsonString(m.version()), R"(,"ready":)");
            switch (m.state()) {
              case ServedModel::State::kReady:
                return Reply(res, 200, absl::StrCat(head, "true}"));
              case ServedModel::State::kFailed:
                notes.error = absl::StrCat("failed to load: ", m.failure());
                break;
              case ServedModel::State::kLoading:
                notes.error = "loading";
                break;
              case ServedModel::State::kStopped:
                notes.error = "the server is shutting down";
                break;
            }
            notes.code = absl::StatusCode::kUnavailable;
            Reply(res, 400, absl::StrCat(head, R"(false,"error":)", JsonString(notes.error), "}"));
          });

  svr.Post(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/infer)",
           [&ctx](const httplib::Request& req, httplib::Response& res) {
             InFlight in_flight(ctx.in_flight);
             const Clock::time_point start = notes.started ? notes.start : Clock::now();
             InferRequest request;
             request.model = Match(req, 1);
             request.version = Match(req, 2);
             absl::StatusOr<const ServedModel*> model = ctx.repository.find(request.model, request.version);
             if (!model.ok()) return ReplyError(res, model.status());
             notes.model = request.model;
             absl::StatusOr<InferOutputs> result;
             if (absl::Status parsed = ParseInferRequestJson(req.body, request); !parsed.ok()) {
               result = parsed;
             } else {
               notes.id = request.id;
               request.deadline = ctx.deadlineFor(request.timeout);
               result = (*model)->inferHere(std::move(request));
             }
             const std::string& version = (*model)->version();
             if (result.ok()) {
               Reply(res, 200, InferResponseJson(notes.model, version, notes.id, *result));
             } else {
               ReplyError(res, result.status());
             }
             ctx.metrics->recordInference(notes.model, Protocol::kHttp, result.status().code(),
                                          std::chrono::duration<double>(Clock::now() - start).count());
           });

  svr.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(ctx.metricsText(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace pyfleet::serve
