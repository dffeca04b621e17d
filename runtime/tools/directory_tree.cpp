// File: directory_tree.cpp
//
// See directory_tree.h; mirrors Directory._get_dir, _add_file, has_file and
// _stringify_tree.
#include "runtime/tools/directory_tree.h"

#include <vector>

#include "runtime/tools/python_str_split.h"

namespace pyfleet::internal {
namespace {
constexpr std::string_view kSpace = "    ";
constexpr std::string_view kBranch = "│   ";
constexpr std::string_view kTee = "├── ";
constexpr std::string_view kLast = "└── ";
constexpr std::string_view kRoot = "─── ";
}  // namespace

void DirectoryTree::addFile(std::string_view path) {
  std::vector<std::string_view> parts = PythonStrSplit(path, '/');
  Node* dir = &root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = dir->children.find(parts[i]);
    if (it == dir->children.end()) {
      it = dir->children
               .emplace(std::string(parts[i]),
                        std::make_unique<Node>(Node{std::string(parts[i]), true, {}}))
               .first;
    }
    dir = it->second.get();  // may be a file node, as in torch
  }
  const std::string file(parts.back());
  dir->children[file] = std::make_unique<Node>(Node{file, false, {}});
}

bool DirectoryTree::hasFile(std::string_view path) const {
  const Node* node = &root_;
  std::vector<std::string_view> parts = PythonStrSplit(path, '/');
  for (std::string_view part : parts) {
    auto it = node->children.find(part);
    if (it == node->children.end()) return false;
    node = it->second.get();
  }
  return true;
}

void DirectoryTree::stringify(const Node& node, std::string& out, const std::string& preamble,
                              std::string_view dir_ptr) {
  out.append(preamble).append(dir_ptr).append(node.name).append("\n");
  const std::string child_preamble =
      preamble + std::string(dir_ptr == kTee ? kBranch : kSpace);
  std::vector<const Node*> dirs, files;  // std::map iterates in byte (= code point) order
  for (const auto& [name, child] : node.children) {
    (child->is_dir ? dirs : files).push_back(child.get());
  }
  for (size_t i = 0; i < dirs.size(); ++i) {
    const bool last = i + 1 == dirs.size() && files.empty();
    stringify(*dirs[i], out, child_preamble, last ? kLast : kTee);
  }
  for (size_t i = 0; i < files.size(); ++i) {
    out.append(child_preamble)
        .append(i + 1 == files.size() ? kLast : kTee)
        .append(files[i]->name)
        .append("\n");
  }
}

std::string DirectoryTree::toString() const {
  std::string out;
  stringify(root_, out, "", kRoot);
  return out;
}

}  // namespace pyfleet::internal
