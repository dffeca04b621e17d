// File: environment.cpp — pyfleet::Environment (environment.h).
#include "pyfleet/environment.h"

namespace pyfleet {

Environment::~Environment() = default;

}  // namespace pyfleet
