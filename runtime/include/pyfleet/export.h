// File: export.h
//
// PYFLEET_API marks the public host API; everything else in libpyfleet.so is hidden
// (-fvisibility=hidden), the C10_EXPORT pattern.
#pragma once

#define PYFLEET_API __attribute__((__visibility__("default")))
