// File: module_tree.cpp
//
// The importer's module tree, built once from the extern list and the record names
// exactly as torch's PackageImporter._add_extern / _add_file build theirs (same
// quirks: ".data/x" records create a ".data" package node; a later "x.py" replaces
// a package node of the same name).
//
//   AddExtern(self, "torch");          // torch.** served from sys.modules
//   AddFile(self, "pkg/__init__.py");  // pkg is a package with source
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "interpreter/importer/importer_state.h"

namespace pyfleet::internal {
namespace {

// torch's _get_or_create_package(atoms). Returns the node (a package or an extern
// node), or NULL with ImportError set.
PathNode* GetOrCreatePackage(PackageImporterObject* self, const std::vector<std::string>& atoms) {
  PathNode* cur = self->root;
  for (size_t i = 0; i < atoms.size(); ++i) {
    auto it = cur->children.find(atoms[i]);
    PathNode* node;
    if (it == cur->children.end()) {
      auto fresh = std::make_unique<PathNode>(PathNode::Kind::kPackage);
      node = fresh.get();
      cur->children.emplace(atoms[i], std::move(fresh));
    } else {
      node = it->second.get();
    }
    if (node->kind == PathNode::Kind::kExtern) return node;
    if (node->kind == PathNode::Kind::kModule) {
      // torch names atoms[:i] here (not including the module itself); kept as is.
      std::vector<std::string> head(atoms.begin(), atoms.begin() + static_cast<ptrdiff_t>(i));
      std::string name = absl::StrJoin(head, ".");
      PyErr_Format(PyExc_ImportError,
                   "inconsistent module structure. module %s is not a package, but has submodules",
                   name.c_str());
      return nullptr;
    }
    cur = node;
  }
  return cur;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int AddExtern(PackageImporterObject* self, const std::string& extern_name) {
  std::vector<std::string> atoms = absl::StrSplit(extern_name, '.');
  std::string last = atoms.back();
  atoms.pop_back();
  PathNode* package = GetOrCreatePackage(self, atoms);
  if (package == nullptr) return -1;
  if (package->kind == PathNode::Kind::kExtern) return 0;  // a shorter extern covers it
  package->children[last] = std::make_unique<PathNode>(PathNode::Kind::kExtern);
  return 0;
}

int AddFile(PackageImporterObject* self, const std::string& filename) {
  std::vector<std::string> prefix = absl::StrSplit(filename, '/');
  std::string last = prefix.back();
  prefix.pop_back();
  if (prefix.size() > 1 && prefix[0] == ".data") return 0;
  PathNode* package = GetOrCreatePackage(self, prefix);
  if (package == nullptr) return -1;
  if (package->kind == PathNode::Kind::kExtern) {
    PyErr_Format(PyExc_ImportError,
                 "inconsistent module structure. package contains a module file %s that is a "
                 "subpackage of a module marked external.",
                 filename.c_str());
    return -1;
  }
  if (last == "__init__.py") {
    package->source_file = filename;
  } else if (EndsWith(last, ".py")) {
    auto node = std::make_unique<PathNode>(PathNode::Kind::kModule);
    node->source_file = filename;
    package->children[last.substr(0, last.size() - 3)] = std::move(node);
  }
  return 0;
}

}  // namespace pyfleet::internal
