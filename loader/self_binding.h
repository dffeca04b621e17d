// File: self_binding.h
//
// bindSelfReferences() rewrites, in the image of a library that is about to be copied
// for each interpreter, every symbol relocation that the dynamic linker would resolve to
// the library's own definition into the equivalent R_X86_64_RELATIVE, so that loading a
// copy costs no symbol lookup for it. Done once per process, in the template (see
// library_template.h), it serves every later interpreter.
//
//   // definedInGlobalScope() is global_scope.h's probe of this process.
//   absl::StatusOr<SelfBindingCount> n = bindSelfReferences(elf, image, definedInGlobalScope);
//   // n->rewritten relocations of libtorch_python.so now need no lookup in its copies
//
// Note [Binding a copy's references to itself]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A copy is dlopen'ed RTLD_LOCAL, so glibc resolves each of its symbol references by
// searching first the global scope (the executable, its dependencies, RTLD_GLOBAL
// objects: 330 libraries in a host linked with Debian's LibTorch) and then the copy's own
// local scope, which starts with the copy itself. libtorch_python.so.1.13 has about 9,200
// relocations against symbols it defines itself (it is not linked -Bsymbolic); each one
// walks the whole global scope without a match before landing on the copy, some 60 ms per
// interpreter on this 2-core VM. When no object in the global scope defines the name,
// the answer is known before loading: the copy's own load address plus st_value. That is
// what R_X86_64_RELATIVE computes (load address + addend), so we store st_value (+ the
// original addend for R_X86_64_64) as the addend and let ld.so apply it without a lookup.
//
// Only references whose outcome cannot differ are rewritten: R_X86_64_64, _GLOB_DAT and
// _JUMP_SLOT (the last two with addend 0) against a symbol the library defines in a
// section (not SHN_ABS/COMMON), with default visibility, binding GLOBAL, WEAK or
// GNU_UNIQUE (demoted to GLOBAL in copies, Note [STB_GNU_UNIQUE demotion]), type other
// than IFUNC (needs its resolver called) and TLS, unversioned (.gnu.version index 1), with
// a non-zero value (glibc skips zero-valued definitions), not weak when LD_DYNAMIC_WEAK is
// set; and only when `defined_in_global_scope(name)` is false. The decision is made once per
// process, when the template is built: an object that the host later dlopens
// RTLD_GLOBAL defining the same name would have interposed on later copies, and does
// not. _JUMP_SLOT entries become RELATIVE too, which glibc applies only for RTLD_NOW
// loads; copies are always loaded RTLD_NOW (library_copy.h).
#pragma once

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "loader/elf_file.h"

namespace pyfleet::internal {

struct SelfBindingCount {
  int examined = 0;   // symbol relocations (R_X86_64_64, _GLOB_DAT, _JUMP_SLOT) seen
  int rewritten = 0;  // of those, now R_X86_64_RELATIVE
};

// bindSelfReferences()
//
// Rewrites `image` in place (see the Note above). `elf` must be parsed from bytes with
// the same layout as `image` (e.g. the original file, `image` its copy); the relocation
// tables and .dynsym are read from `elf`. `defined_in_global_scope` is asked once per
// distinct symbol. Errors: InvalidArgument naming the file for relocation tables outside
// the file or of the wrong entry size. A library without .dynsym or relocation tables is
// returned unchanged (zero counts).
absl::StatusOr<SelfBindingCount> bindSelfReferences(
    const ElfFile& elf, std::string& image,
    absl::FunctionRef<bool(const char* name)> defined_in_global_scope);

}  // namespace pyfleet::internal
