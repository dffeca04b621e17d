// Patch-once templates for per-interpreter library copies; see library_template.h.
#include "loader/library_template.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "loader/status_macros.h"

namespace pyfleet::internal {

static_assert(LibraryTemplate::kIdPlaceholder.size() == LibraryTemplate::kIdWidth,
              "a placeholder must be exactly as wide as the id it stands for");

absl::StatusOr<std::string> LibraryTemplate::formatId(int id) {
  if (id < 0 || id > kMaxId) {
    return absl::InvalidArgumentError(
        absl::StrCat("interpreter id ", id, " is outside [0, ", kMaxId, "]"));
  }
  return absl::StrFormat("%0*d", kIdWidth, id);
}

absl::StatusOr<std::string> LibraryTemplate::withId(absl::string_view templated, int id) {
  PYFLEET_ASSIGN_OR_RETURN(std::string digits, formatId(id));
  return absl::StrReplaceAll(templated, {{kIdPlaceholder, digits}});
}

absl::StatusOr<LibraryTemplate> LibraryTemplate::create(std::string image, std::string file_name,
                                                        const ElfEdits& edits) {
  PYFLEET_ASSIGN_OR_RETURN(EditedImage edited, editElf(std::move(image), file_name, edits));
  LibraryTemplate t;
  t.file_name_ = std::move(file_name);
  t.image_ = std::move(edited.image);
  t.demoted_ = edited.demoted;
  const absl::string_view added =
      absl::string_view(t.image_).substr(edited.new_strings_offset, edited.new_strings_size);
  for (size_t at = added.find(kIdPlaceholder); at != absl::string_view::npos;
       at = added.find(kIdPlaceholder, at + kIdPlaceholder.size())) {
    t.placeholder_offsets_.push_back(edited.new_strings_offset + at);
  }
  return t;
}

absl::StatusOr<std::string> LibraryTemplate::instantiate(int id) const {
  PYFLEET_ASSIGN_OR_RETURN(std::string digits, formatId(id));
  std::string copy = image_;
  PYFLEET_RETURN_IF_ERROR(overwriteBytes(copy, placeholder_offsets_, digits));
  return copy;
}

absl::Status LibraryTemplate::writeInstance(int id, ByteWriter write) const {
  PYFLEET_ASSIGN_OR_RETURN(std::string digits, formatId(id));
  PYFLEET_RETURN_IF_ERROR(write(image_, 0));
  for (uint64_t offset : placeholder_offsets_) PYFLEET_RETURN_IF_ERROR(write(digits, offset));
  return absl::OkStatus();
}

}  // namespace pyfleet::internal
