// A complete small serving program: load a torch.package once, then answer requests
// from a pool of threads, each call on whichever interpreter is free.
//
//   serve MODEL.pt [THREADS] [REQUESTS]
#include <pyfleet/pyfleet.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: serve MODEL.pt [THREADS] [REQUESTS]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 4;
  const int requests = argc > 3 ? std::atoi(argv[3]) : 100;
  try {
    pyfleet::InterpreterManager manager(2);                       // 2 interpreters, 2 GILs
    pyfleet::Package package = manager.loadPackage(argv[1]);      // one mapping of the file
    pyfleet::ReplicatedObj model = package.loadPickle("model", "model.pkl");
    c10::IValue example = package.acquireSession().self.attr("load_pickle")({"model", "example.pkl"}).toIValue();
    std::vector<c10::IValue> args = example.toTupleRef().elements().vec();

    std::atomic<int> next{0}, answered{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        while (next++ < requests) {
          c10::IValue y = model(args);                            // any free interpreter
          if (y.isTensor()) ++answered;
        }
      });
    }
    for (std::thread& t : pool) t.join();
    pyfleet::Metrics metrics = manager.metrics();
    std::printf("answered %d of %d requests on %zu interpreters (p50 %.3f ms)\n", answered.load(), requests,
                metrics.interpreters.size(), metrics.total.run_time.quantile(0.5) * 1e3);
    return answered == requests ? 0 : 1;
  } catch (const pyfleet::Error& e) {
    std::fprintf(stderr, "serve: %s\n", e.what());
    return 1;
  }
}
