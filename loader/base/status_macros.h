// File: status_macros.h
//
// The project's one pair of early-return helpers for absl::Status / absl::StatusOr
// (abseil ships no public RETURN_IF_ERROR). STYLE.md §7.2 asks for exactly one
// definition; it lives here because loader/ is the lowest layer that needs it.
//
//   absl::StatusOr<ElfFile> parseAndCheck(absl::string_view bytes) {
//     PYFLEET_ASSIGN_OR_RETURN(ElfFile elf, ElfFile::parse(bytes, "libfoo.so"));
//     PYFLEET_RETURN_IF_ERROR(checkSomething(elf));
//     return elf;
//   }
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) once; returns it from the enclosing function if it
// is not OK.
#define PYFLEET_RETURN_IF_ERROR(expr)                      \
  do {                                                     \
    ::absl::Status pyfleet_status_ = (expr);               \
    if (!pyfleet_status_.ok()) return pyfleet_status_;     \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>) once; on error returns its status from the
// enclosing function, else moves the value into `lhs` (a declaration or an lvalue).
#define PYFLEET_ASSIGN_OR_RETURN(lhs, rexpr) \
  PYFLEET_ASSIGN_OR_RETURN_IMPL_(PYFLEET_STATUS_CONCAT_(pyfleet_statusor_, __LINE__), lhs, rexpr)

#define PYFLEET_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#define PYFLEET_STATUS_CONCAT_(a, b) PYFLEET_STATUS_CONCAT_INNER_(a, b)
#define PYFLEET_STATUS_CONCAT_INNER_(a, b) a##b
