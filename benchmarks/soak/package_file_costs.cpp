// File: package_file_costs.cpp
//
// pyfleet-bench-package-file: what each way of serving a package file that may change on
// disk costs, on one file (default: a 100 MB file of random bytes written to $TMPDIR).
// It measures, for the whole file, warm (in the page cache) and cold (evicted with
// posix_fadvise DONTNEED first):
//   map       MAP_PRIVATE mapping of the file, every page read once (today's zero copy;
//             truncation under it is SIGBUS, an in-place rewrite shows through)
//   memfd     the file copied into a sealed memfd (copy_file_range / sendfile), mapped
//             MAP_PRIVATE, every page read once: immune to truncation and rewrites
//   populate  MAP_PRIVATE mapping privatized up front (MADV_POPULATE_WRITE): anonymous
//             copies of every page, also immune (but remap() would see the new file)
//   read      pread() of the whole file into anonymous memory
// plus the price of the two cheap ideas that do not give immunity by themselves: taking
// and dropping a read lease (F_SETLEASE, the trigger for privatizing when a writer
// opens the file) and an fstat() identity check (detecting a change). Memory is
// reported per kind (RssFile, RssShmem, RssAnon) while the mapping is alive.
//
//   B/bin/pyfleet-bench-package-file                       # 100 MB, 5 rounds
//   B/bin/pyfleet-bench-package-file --file B/fixtures/bench/resnet50.pt --rounds 3
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "pyfleet-bench-package-file: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// kB of one field of /proc/self/status ("RssFile:").
long StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return -1;
}

struct Memory {
  long file_kb, shmem_kb, anon_kb;
};
Memory Now() { return {StatusKb("RssFile:"), StatusKb("RssShmem:"), StatusKb("RssAnon:")}; }

// Reads one byte of every page (what serving all weights once does).
uint64_t TouchPages(const uint8_t* p, size_t size) {
  uint64_t sum = 0;
  for (size_t i = 0; i < size; i += 4096) sum += p[i];
  return sum;
}

void Evict(int fd, size_t size) {
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, static_cast<off_t>(size), POSIX_FADV_DONTNEED);
}

// One strategy: sets up the view of the file (returns its bytes), tears it down.
struct Strategy {
  const char* name;
  std::function<uint8_t*(int fd, size_t size, int* extra_fd)> open;
};

uint8_t* MapFd(int fd, size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) Die("mmap");
  return static_cast<uint8_t*>(p);
}

std::vector<Strategy> Strategies() {
  return {
      {"map", [](int fd, size_t size, int*) { return MapFd(fd, size); }},
      {"memfd",
       [](int fd, size_t size, int* extra_fd) {
         const int mem = ::memfd_create("pyfleet-package", MFD_CLOEXEC | MFD_ALLOW_SEALING);
         if (mem < 0) Die("memfd_create");
         if (::ftruncate(mem, static_cast<off_t>(size)) != 0) Die("ftruncate");
         loff_t in = 0, out = 0;
         while (static_cast<size_t>(in) < size) {
           ssize_t n = ::copy_file_range(fd, &in, mem, &out, size - in, 0);
           if (n <= 0) break;
         }
         while (static_cast<size_t>(in) < size) {  // ext4 -> tmpfs: copy_file_range refuses
           off_t from = in;
           if (::lseek(mem, in, SEEK_SET) < 0) Die("lseek");
           ssize_t n = ::sendfile(mem, fd, &from, size - in);
           if (n <= 0) Die("sendfile");
           in = from;
         }
         if (::fcntl(mem, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) Die("seal");
         *extra_fd = mem;
         return MapFd(mem, size);
       }},
      {"populate",
       [](int fd, size_t size, int*) {
         uint8_t* p = MapFd(fd, size);
         if (::madvise(p, size, MADV_POPULATE_WRITE) != 0) Die("madvise(MADV_POPULATE_WRITE)");
         return p;
       }},
      {"read",
       [](int fd, size_t size, int*) {
         void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
         if (p == MAP_FAILED) Die("mmap anonymous");
         size_t done = 0;
         while (done < size) {
           ssize_t n = ::pread(fd, static_cast<char*>(p) + done, size - done, static_cast<off_t>(done));
           if (n <= 0) Die("pread");
           done += static_cast<size_t>(n);
         }
         return static_cast<uint8_t*>(p);
       }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  size_t megabytes = 100;
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--file" && i + 1 < argc) {
      file = argv[++i];
    } else if (a == "--mb" && i + 1 < argc) {
      megabytes = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: pyfleet-bench-package-file [--file PATH | --mb N (default 100)] [--rounds N (5)]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  bool made = false;
  if (file.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    file = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pyfleet-bench-package-XXXXXX";
    const int fd = ::mkstemp(file.data());
    if (fd < 0) Die("mkstemp " + file);
    std::mt19937_64 rng(7);
    std::vector<uint64_t> chunk(1 << 17);
    for (size_t written = 0; written < megabytes << 20; written += chunk.size() * 8) {
      for (uint64_t& v : chunk) v = rng();
      if (::write(fd, chunk.data(), chunk.size() * 8) != static_cast<ssize_t>(chunk.size() * 8)) Die("write");
    }
    ::close(fd);
    made = true;
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + file);
  struct stat st;
  if (::fstat(fd, &st) != 0) Die("fstat");
  const size_t size = static_cast<size_t>(st.st_size);
  std::printf("file %s: %.1f MB, %d rounds (median ms; memory while mapped, MB)\n", file.c_str(),
              static_cast<double>(size) / 1e6, rounds);
  std::printf("%-9s %10s %10s %9s %9s %9s\n", "strategy", "warm_ms", "cold_ms", "file_MB", "shmem_MB", "anon_MB");
  for (const Strategy& s : Strategies()) {
    std::vector<double> warm, cold;
    Memory held{};
    for (int r = 0; r < rounds; ++r) {
      for (bool is_cold : {false, true}) {
        if (is_cold) {
          Evict(fd, size);
        } else {
          std::vector<char> buf(1 << 20);
          for (off_t o = 0; o < static_cast<off_t>(size); o += static_cast<off_t>(buf.size())) {
            if (::pread(fd, buf.data(), buf.size(), o) < 0) Die("pread");
          }
        }
        const Memory before = Now();
        int extra = -1;
        const auto t0 = Clock::now();
        uint8_t* p = s.open(fd, size, &extra);
        volatile uint64_t sink = TouchPages(p, size);
        (void)sink;
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        const Memory after = Now();
        if (!is_cold) held = {after.file_kb - before.file_kb, after.shmem_kb - before.shmem_kb, after.anon_kb - before.anon_kb};
        (is_cold ? cold : warm).push_back(ms);
        ::munmap(p, size);
        if (extra >= 0) ::close(extra);
      }
    }
    std::sort(warm.begin(), warm.end());
    std::sort(cold.begin(), cold.end());
    std::printf("%-9s %10.1f %10.1f %9.1f %9.1f %9.1f\n", s.name, warm[warm.size() / 2], cold[cold.size() / 2],
                held.file_kb / 1024.0, held.shmem_kb / 1024.0, held.anon_kb / 1024.0);
  }
  // The cheap parts of the other two ideas.
  {
    const int n = 10000;
    const auto t0 = Clock::now();
    int refused = 0;
    for (int i = 0; i < n; ++i) {
      if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
        ++refused;
        continue;
      }
      ::fcntl(fd, F_SETLEASE, F_UNLCK);
    }
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
    std::printf("lease     take+drop a read lease: %.2f us%s\n", us,
                refused ? " (refused: not the file's owner and no CAP_LEASE, or a writer has it open)" : "");
    struct stat again;
    const auto t1 = Clock::now();
    for (int i = 0; i < n; ++i) ::fstat(fd, &again);
    std::printf("detect    fstat() identity check: %.2f us per check\n",
                std::chrono::duration<double, std::micro>(Clock::now() - t1).count() / n);
  }
  ::close(fd);
  if (made) ::unlink(file.c_str());
  return 0;
}
