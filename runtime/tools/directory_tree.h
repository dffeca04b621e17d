// File: directory_tree.h
//
// torch.package's Directory (torch/package/file_structure_representation.py): the tree
// PackageImporter.file_structure() builds from record names, and its __str__ text,
// byte for byte.
//
//   DirectoryTree tree("demo.pt");
//   tree.addFile("pf_demo/util/maths.py");
//   tree.addFile(".data/version");
//   std::cout << tree.toString();   // "─── demo.pt\n    ├── .data\n ..."
//
// Quirks kept on purpose, because torch has them: adding a file whose name equals an
// existing directory replaces that directory; a path through an existing file name
// descends into the file node (whose children then never print); children print
// directories first, then files, each group sorted by code point (= UTF-8 byte order).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace pyfleet::internal {

class DirectoryTree {
 public:
  explicit DirectoryTree(std::string name) : root_{std::move(name), true, {}} {}

  // DirectoryTree::addFile()
  //
  // Adds `path` ('/'-separated; the last part is the file) like Directory._add_file.
  void addFile(std::string_view path);

  // DirectoryTree::hasFile()
  //
  // Directory.has_file: true if the '/'-separated path names a node (file or folder).
  bool hasFile(std::string_view path) const;

  // DirectoryTree::toString()
  //
  // Exactly str(Directory).
  std::string toString() const;

 private:
  struct Node {
    std::string name;
    bool is_dir;
    std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
  };
  static void stringify(const Node& node, std::string& out, const std::string& preamble,
                        std::string_view dir_ptr);

  Node root_;
};

}  // namespace pyfleet::internal
