// Patch-once templates for per-interpreter library copies; see library_template.h.
#include "loader/library_template.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "loader/base/status_macros.h"

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
  if (compact_) {
    return absl::FailedPreconditionError(absl::StrCat(file_name_, ": template keeps only its changes"));
  }
  PYFLEET_ASSIGN_OR_RETURN(std::string digits, formatId(id));
  std::string copy = image_;
  PYFLEET_RETURN_IF_ERROR(overwriteBytes(copy, placeholder_offsets_, digits));
  return copy;
}

absl::Status LibraryTemplate::writeInstance(int id, ByteWriter write) const {
  return writeInstance(id, write, [this]() -> absl::Status {
    return absl::FailedPreconditionError(
        absl::StrCat(file_name_, ": template keeps only its changes; the original must be copied"));
  });
}

absl::Status LibraryTemplate::writeInstance(int id, ByteWriter write, OriginalCopier copy_original) const {
  PYFLEET_ASSIGN_OR_RETURN(std::string digits, formatId(id));
  if (compact_) {
    PYFLEET_RETURN_IF_ERROR(copy_original());
    for (const Change& change : changes_) PYFLEET_RETURN_IF_ERROR(write(change.bytes, change.offset));
  } else {
    PYFLEET_RETURN_IF_ERROR(write(image_, 0));
  }
  for (uint64_t offset : placeholder_offsets_) PYFLEET_RETURN_IF_ERROR(write(digits, offset));
  return absl::OkStatus();
}

absl::Status LibraryTemplate::keepOnlyChanges(absl::string_view original) {
  if (compact_) return absl::OkStatus();
  if (image_.size() < original.size()) {
    return absl::FailedPreconditionError(absl::StrCat(file_name_, ": edited image is shorter than the original"));
  }
  // Differing runs closer than this are kept as one range: fewer, larger writes (bound
  // relocations are scattered all over .rela.dyn).
  constexpr uint64_t kJoinGap = 4096;
  std::vector<Change> changes;
  const uint64_t common = original.size();
  uint64_t i = 0;
  constexpr uint64_t kBlock = 4096;
  while (i < common) {
    if (i % kBlock == 0 && i + kBlock <= common &&
        std::memcmp(image_.data() + i, original.data() + i, kBlock) == 0) {
      i += kBlock;
      continue;
    }
    if (image_[i] == original[i]) {
      ++i;
      continue;
    }
    uint64_t end = i + 1, same = 0;
    for (uint64_t j = end; j < common && same < kJoinGap; ++j) {
      if (image_[j] == original[j]) {
        ++same;
      } else {
        same = 0;
        end = j + 1;
      }
    }
    changes.push_back(Change{i, image_.substr(i, end - i)});
    i = end;
  }
  // Whatever the edit appended. Zero bytes between the original's end and the first
  // non-zero appended byte need no write: a file extended by pwrite reads zeros there.
  uint64_t tail = common;
  while (tail < image_.size() && image_[tail] == '\0') ++tail;
  if (tail < image_.size()) changes.push_back(Change{tail, image_.substr(tail)});
  else if (image_.size() > common) changes.push_back(Change{image_.size() - 1, std::string(1, '\0')});  // keep the size
  changes_ = std::move(changes);
  std::string().swap(image_);
  compact_ = true;
  return absl::OkStatus();
}

uint64_t LibraryTemplate::heldBytes() const {
  if (!compact_) return image_.size();
  uint64_t held = 0;
  for (const Change& change : changes_) held += change.bytes.size();
  return held;
}

}  // namespace pyfleet::internal
