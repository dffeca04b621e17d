// File: package_report.cpp
//
// See package_report.h. Metadata parsing follows torch 1.13's PackageImporter:
// python_version() is the record decoded and strip()ped, extern modules are the record's
// splitlines().
#include "runtime/tools/package_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/tools/directory_tree.h"
#include "runtime/tools/pickle_globals.h"

namespace pyfleet::internal {
namespace {

// Python's str.strip() for the ASCII whitespace it strips.
std::string_view StripPy(std::string_view s) {
  constexpr std::string_view kWs = " \t\n\r\v\f\x1c\x1d\x1e\x1f";
  size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(kWs);
  return s.substr(b, e - b + 1);
}

// Python's str.splitlines() (keepends=False) on UTF-8 text.
std::vector<std::string> SplitLinesPy(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  auto flush = [&] { out.push_back(cur); cur.clear(); };
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c == '\r') {
      flush();
      i += (i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
    } else if (c == '\n' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e) {
      flush();
      ++i;
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x85) {
      flush();  // U+0085
      i += 2;
    } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      flush();  // U+2028, U+2029
      i += 3;
    } else {
      cur.push_back(static_cast<char>(c));
      ++i;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsStorageRecord(std::string_view name) {
  return StartsWith(name, ".data/") && EndsWith(name, ".storage") &&
         name.find('/', 6) == std::string_view::npos;
}

// torch's DirectoryReader lists records with glob("**"), which skips names starting
// with '.', so file_structure() of an unzipped package never shows .data/ or dotfiles.
bool HiddenFromGlob(std::string_view name) {
  if (!name.empty() && name[0] == '.') return true;
  return name.find("/.") != std::string_view::npos;
}

absl::StatusOr<std::string> ReadText(const PackageArchive& archive, std::string_view name) {
  absl::StatusOr<RecordData> data = archive.read(name);
  if (!data.ok()) return data.status();
  return std::string(data->view());
}

// Appends `s` as a JSON string literal; invalid UTF-8 bytes become U+FFFD.
void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (valid && len == 2 && c < 0xc2) valid = false;  // overlong
    if (!valid) {
      out.append("\\ufffd");
      ++i;
      continue;
    }
    if (len > 1) {
      out.append(s.substr(i, len));
    } else if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
    i += len;
  }
  out.push_back('"');
}

void AppendJsonList(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.append(", ");
    AppendJsonString(out, items[i]);
  }
  out.push_back(']');
}

}  // namespace

absl::StatusOr<PackageReport> BuildPackageReport(const PackageArchive& archive,
                                                 const std::string& display_name,
                                                 const GlobGroup& globs) {
  PackageReport r;
  DirectoryTree tree(display_name);
  for (size_t i = 0; i < archive.recordCount(); ++i) {
    const RecordInfo& info = archive.record(i);
    const bool listed =
        archive.kind() != PackageArchive::Kind::kDirectory || !HiddenFromGlob(info.name);
    if (listed && globs.matches(info.name)) {
      tree.addFile(info.name);
      r.files.push_back(info.name);
    }
    if (IsStorageRecord(info.name)) {
      ++r.storage_count;
      r.storage_bytes += info.size;
    }
  }
  r.tree = tree.toString();

  const char* version_record = archive.find(".data/version") ? ".data/version" : "version";
  absl::StatusOr<std::string> version = ReadText(archive, version_record);
  if (!version.ok()) return version.status();
  r.version = std::string(StripPy(*version));

  if (archive.find(".data/python_version")) {
    absl::StatusOr<std::string> pv = ReadText(archive, ".data/python_version");
    if (!pv.ok()) return pv.status();
    r.python_version = std::string(StripPy(*pv));
  }

  absl::StatusOr<std::string> externs = ReadText(archive, ".data/extern_modules");
  if (!externs.ok()) return externs.status();
  r.extern_modules = SplitLinesPy(*externs);

  for (size_t i = 0; i < archive.recordCount(); ++i) {
    const RecordInfo& info = archive.record(i);
    if (!EndsWith(info.name, ".pkl")) continue;
    absl::StatusOr<RecordData> data = archive.read(i);
    if (!data.ok()) return data.status();
    PickleReport p{info.name, {}, {}};
    absl::StatusOr<std::vector<std::string>> modules = PickleGlobalModules(data->view());
    if (modules.ok()) {
      p.modules = *std::move(modules);
    } else {
      p.error = std::string(modules.status().message());
    }
    r.pickles.push_back(std::move(p));
  }
  return r;
}

std::string ReportText(const PackageReport& r) {
  std::string out = r.tree;
  absl::StrAppend(&out, "version: ", r.version, "\n");
  absl::StrAppend(&out, "python_version: ", r.python_version ? *r.python_version : "None", "\n");
  absl::StrAppend(&out, "extern_modules: ", r.extern_modules.size(), "\n");
  for (const std::string& m : r.extern_modules) absl::StrAppend(&out, "  ", m, "\n");
  absl::StrAppend(&out, "storages: ", r.storage_count, " records, ", r.storage_bytes, " bytes\n");
  absl::StrAppend(&out, "pickles: ", r.pickles.size(), "\n");
  for (const PickleReport& p : r.pickles) {
    if (p.error.empty()) {
      absl::StrAppend(&out, "  ", p.record, ": ", absl::StrJoin(p.modules, " "), "\n");
    } else {
      absl::StrAppend(&out, "  ", p.record, ": error: ", p.error, "\n");
    }
  }
  return out;
}

std::string ReportJson(const PackageReport& r) {
  std::string out = "{\"files\": ";
  AppendJsonList(out, r.files);
  out.append(", \"tree\": ");
  AppendJsonString(out, r.tree);
  out.append(", \"version\": ");
  if (!r.version.empty() && r.version.size() < 19 &&
      r.version.find_first_not_of("0123456789") == std::string::npos) {
    out.append(r.version);  // a number, as torch parses it
  } else {
    AppendJsonString(out, r.version);
  }
  out.append(", \"python_version\": ");
  if (r.python_version) {
    AppendJsonString(out, *r.python_version);
  } else {
    out.append("null");
  }
  out.append(", \"extern_modules\": ");
  AppendJsonList(out, r.extern_modules);
  absl::StrAppend(&out, ", \"storages\": {\"count\": ", r.storage_count, ", \"bytes\": ",
                  r.storage_bytes, "}, \"pickles\": {");
  bool first = true;
  for (const PickleReport& p : r.pickles) {
    if (!p.error.empty()) continue;
    if (!first) out.append(", ");
    first = false;
    AppendJsonString(out, p.record);
    out.append(": ");
    AppendJsonList(out, p.modules);
  }
  out.append("}, \"pickle_errors\": {");
  first = true;
  for (const PickleReport& p : r.pickles) {
    if (p.error.empty()) continue;
    if (!first) out.append(", ");
    first = false;
    AppendJsonString(out, p.record);
    out.append(": ");
    AppendJsonString(out, p.error);
  }
  out.append("}}\n");
  return out;
}

}  // namespace pyfleet::internal
