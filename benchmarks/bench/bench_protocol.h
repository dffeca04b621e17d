// File: bench_protocol.h
//
// The line protocol between pyfleet-bench (the parent, which plans, times and measures)
// and the processes of one measurement: pyfleet-bench-worker (multi_python, one_python,
// torchscript) and bench_worker.py (python_threads, python_processes). Every worker
// speaks it on its stdin/stdout; stderr is kept aside and shown only if it fails.
//
//   worker -> parent   "ready <key>=<value>..."   loaded, warmed up, still calling
//   parent -> worker   "go <t0_ns> <t_end_ns>"     the window, CLOCK_MONOTONIC in ns
//   worker -> parent   "result <n> <ns>..."        n calls ended inside the window and
//                                                   each one's latency in ns; then exits
//
// Note [Measuring window]
// ~~~~~~~~~~~~~~~~~~~~~~~
// From the moment it has loaded the model, every worker thread calls it back to back and
// never pauses: through warm-up, while the parent waits for the other processes of the
// setup to be ready, through the window and a little past it. A call counts when it ENDS
// inside [t0, t_end]: in a steady state that is the completion rate, without the bias of
// dropping the calls that straddle either edge (one ResNet-18 call is ~3% of a 1 s window).
// All processes of a setup get the same absolute window (CLOCK_MONOTONIC is the clock of
// std::chrono::steady_clock and of Python's time.monotonic_ns()), so the python_processes
// replicas are measured over the same interval, and the parent reads their CPU time and
// memory during it.
#pragma once

namespace pyfleet::bench {

inline constexpr char kReady[] = "ready";
inline constexpr char kGo[] = "go";
inline constexpr char kResult[] = "result";

// A call that has warmed up: at least this many calls per thread, and the warm-up time.
inline constexpr int kMinWarmupCalls = 3;

}  // namespace pyfleet::bench
