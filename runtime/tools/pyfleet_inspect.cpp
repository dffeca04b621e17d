// File: pyfleet_inspect.cpp
//
// pyfleet-inspect: prints what a torch.package archive holds, without Python.
//
//   pyfleet-inspect model.pt --include 'pf_demo/**' --exclude '**/*.pkl'
//   pyfleet-inspect model.pt --json | jq .pickles
//   pyfleet-inspect --sha256 model.pt        # the digest to pin (PackageOptions::sha256)
//
// Text output: the file tree exactly as torch's PackageImporter.file_structure(include=,
// exclude=) prints it, then the format version, python version, extern modules, storage
// count and bytes, and for each *.pkl record the modules its globals come from. --json
// prints the same as one object (see package_report.h). PACKAGE may be a ZIP archive or a
// directory laid out like an unzipped package. --sha256 prints only the SHA-256 of the
// package file (64 lowercase hex digits, what `sha256sum` prints), computed by the very
// code that checks a pin (PackageArchive::sha256), after the archive opened and indexed.
//
// Exit status: 0 on success; 1 if the archive or a record it needs cannot be read (the
// message names the archive and the record); 2 for bad usage or a bad glob; 3 if the report
// was printed but some pickle could not be walked.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "interpreter/archive/package_archive.h"
#include "runtime/tools/glob_group.h"
#include "runtime/tools/package_report.h"
#include "runtime/tools/tool_main.h"

namespace {

constexpr pyfleet::tools::ToolInfo kTool = {
    "pyfleet-inspect",
    "pyfleet-inspect PACKAGE [--include GLOB]... [--exclude GLOB]... [--json]\n"
    "       pyfleet-inspect --sha256 PACKAGE",
    "Prints a torch.package archive's file tree (as PackageImporter.file_structure() prints\n"
    "it), format and python version, extern modules, storages and the modules each pickle's\n"
    "globals come from. PACKAGE is a ZIP archive or an unzipped package directory.\n"
    "\n"
    "Flags:\n"
    "  --include GLOB  show only records matching the torch.package glob ('**' = any number\n"
    "                  of folders); repeatable (default: **)\n"
    "  --exclude GLOB  hide records matching the glob; repeatable\n"
    "  --json          print the report as one JSON object\n"
    "  --sha256        print only the package file's SHA-256 (the digest to pin with\n"
    "                  PackageOptions::sha256 or PackageImporter(path, sha256=...))\n"
    "  --help          print this help and exit",
    nullptr};  // parses argv itself: --include and --exclude repeat

// The usage line, after a usage error.
std::string Usage() { return std::string("Usage: ") + kTool.usage + "\n"; }

struct Args {
  std::string package;
  std::vector<std::string> include, exclude;
  bool json = false;
  bool sha256 = false;
};

// Parses argv; returns false (after printing why) on bad usage.
bool ParseArgs(int argc, char* const* argv, Args& args, bool& help) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& flag, std::vector<std::string>& into) -> int {
      if (a == flag) {
        if (i + 1 >= argc) {
          std::cerr << "pyfleet-inspect: " << flag << " needs a GLOB\n" << Usage();
          return -1;
        }
        into.push_back(argv[++i]);
        return 1;
      }
      if (absl::StartsWith(a, flag + "=")) {
        into.push_back(a.substr(flag.size() + 1));
        return 1;
      }
      return 0;
    };
    int r;
    if ((r = value("--include", args.include)) != 0 || (r = value("--exclude", args.exclude)) != 0) {
      if (r < 0) return false;
    } else if (a == "--json") {
      args.json = true;
    } else if (a == "--sha256") {
      args.sha256 = true;
    } else if (a == "--help" || a == "-h") {
      help = true;
      return true;
    } else if (absl::StartsWith(a, "-")) {
      std::cerr << "pyfleet-inspect: unknown option " << a << "\n" << Usage();
      return false;
    } else if (args.package.empty()) {
      args.package = a;
    } else {
      std::cerr << "pyfleet-inspect: more than one PACKAGE (" << args.package << ", " << a
                << ")\n" << Usage();
      return false;
    }
  }
  if (args.package.empty()) {
    std::cerr << "pyfleet-inspect: no PACKAGE given\n" << Usage();
    return false;
  }
  if (args.sha256 && (args.json || !args.include.empty() || !args.exclude.empty())) {
    std::cerr << "pyfleet-inspect: --sha256 prints the digest only; it takes no other option\n" << Usage();
    return false;
  }
  return true;
}

// --sha256: the digest pinning compares with (Note [Pinned packages] in
// interpreter/archive/package_archive.h). 0, or 1 if the package cannot be opened.
int PrintSha256(const std::string& package) {
  using pyfleet::internal::PackageArchive;
  struct stat st;
  if (::stat(package.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::cerr << "pyfleet-inspect: " << package
              << ": a directory (an unzipped package) has no SHA-256; pin the package file\n";
    return 1;
  }
  absl::StatusOr<std::shared_ptr<PackageArchive>> archive = PackageArchive::Open(package);
  absl::StatusOr<std::string> digest =
      archive.ok() ? (*archive)->sha256() : absl::StatusOr<std::string>(archive.status());
  if (!digest.ok()) {
    std::cerr << "pyfleet-inspect: " << package << ": " << digest.status().message() << "\n";
    return 1;
  }
  std::cout << *digest << "\n";
  return 0;
}

int Run(const std::vector<char*>& argv) {
  using pyfleet::internal::PackageArchive;
  Args args;
  bool help = false;
  if (!ParseArgs(static_cast<int>(argv.size()), argv.data(), args, help)) return 2;
  if (help) {
    pyfleet::tools::PrintHelp(std::cout, kTool);
    return 0;
  }
  if (args.sha256) return PrintSha256(args.package);
  if (args.include.empty()) args.include.push_back("**");  // torch's default include

  absl::StatusOr<pyfleet::internal::GlobGroup> globs =
      pyfleet::internal::GlobGroup::Create(args.include, args.exclude, '/');
  if (!globs.ok()) {
    std::cerr << "pyfleet-inspect: bad glob: " << globs.status().message() << "\n";
    return 2;
  }

  struct stat st;
  const bool is_dir = ::stat(args.package.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  absl::StatusOr<std::shared_ptr<PackageArchive>> archive =
      is_dir ? PackageArchive::OpenDirectory(args.package) : PackageArchive::Open(args.package);
  if (!archive.ok()) {
    std::cerr << "pyfleet-inspect: " << args.package << ": " << archive.status().message()
              << "\n";
    return 1;
  }
  absl::StatusOr<pyfleet::internal::PackageReport> report =
      pyfleet::internal::BuildPackageReport(**archive, args.package, *globs);
  if (!report.ok()) {
    std::cerr << "pyfleet-inspect: " << args.package << ": " << report.status().message()
              << "\n";
    return 1;
  }
  std::cout << (args.json ? pyfleet::internal::ReportJson(*report)
                          : pyfleet::internal::ReportText(*report));
  std::cout.flush();
  for (const auto& p : report->pickles) {
    if (!p.error.empty()) return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return pyfleet::tools::ToolMain(argc, argv, kTool, Run); }
