# Every external dependency comes from a Debian package; nothing is vendored.
# scripts/deps installs them. This file only finds them and names the results.

# The two platforms pyfleet supports, one source tree (ARCHITECTURE.md "Platforms"):
#   Debian 12: CPython 3.11, LibTorch 1.13      Debian 13: CPython 3.13, LibTorch 2.6
# The release's own python3 (the one python3-torch is built for), never a pyenv one.
set(PYFLEET_PYTHON /usr/bin/python3 CACHE FILEPATH "the platform's python3 (with its python3-torch)")
execute_process(
  COMMAND ${PYFLEET_PYTHON} -c "import sys, sysconfig as s; print('%d.%d' % sys.version_info[:2]); print(s.get_config_var('LIBPL')); print(s.get_paths()['include']); print(s.get_config_var('EXT_SUFFIX')); print(s.get_paths()['stdlib']); print(s.get_paths()['platstdlib'] + '/lib-dynload')"
  OUTPUT_VARIABLE _pyinfo OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
string(REPLACE "\n" ";" _pyinfo "${_pyinfo}")
list(GET _pyinfo 0 PYFLEET_PYTHON_VERSION)
list(GET _pyinfo 1 PYFLEET_PYTHON_LIBPL)
list(GET _pyinfo 2 PYFLEET_PYTHON_INCLUDE)
list(GET _pyinfo 3 PYFLEET_PYTHON_EXT_SUFFIX)
list(GET _pyinfo 4 PYFLEET_PYTHON_STDLIB)
list(GET _pyinfo 5 PYFLEET_PYTHON_DYNLOAD)
if(NOT PYFLEET_PYTHON_VERSION MATCHES "^3\\.(11|13)$")
  message(FATAL_ERROR "pyfleet supports CPython 3.11 (Debian 12) and 3.13 (Debian 13); "
                      "${PYFLEET_PYTHON} is ${PYFLEET_PYTHON_VERSION}")
endif()
# CPython itself: Debian's PIC archive (the default and the fallback), or the PGO+LTO
# build of Debian's own CPython source that scripts/build-python caches in .cache/cpython
# (Note [An LTO build of Debian's CPython] there), or any archive named here.
set(PYFLEET_PYTHON_ARCHIVE "" CACHE FILEPATH
    "a PIC libpython${PYFLEET_PYTHON_VERSION} archive to embed instead of Debian's libpython${PYFLEET_PYTHON_VERSION}-pic.a")
set(_built_python ${CMAKE_SOURCE_DIR}/.cache/cpython/libpython${PYFLEET_PYTHON_VERSION}-pic-lto.a)
if(PYFLEET_PYTHON_ARCHIVE)
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${PYFLEET_PYTHON_ARCHIVE})
elseif(EXISTS ${_built_python} AND NOT PYFLEET_SANITIZE)
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${_built_python})
else()
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${PYFLEET_PYTHON_LIBPL}/libpython${PYFLEET_PYTHON_VERSION}-pic.a)
endif()
if(NOT EXISTS ${PYFLEET_PYTHON_PIC_ARCHIVE})
  message(FATAL_ERROR "missing ${PYFLEET_PYTHON_PIC_ARCHIVE}: apt-get install libpython${PYFLEET_PYTHON_VERSION}-dev")
endif()
message(STATUS "pyfleet: CPython ${PYFLEET_PYTHON_VERSION} from ${PYFLEET_PYTHON_PIC_ARCHIVE}")

# The embedded interpreter links CPython minus dynload_shlib.o: pyfleet supplies its own
# _PyImport_FindSharedFuncptr (see interpreter/src/dynload.cpp).
#
# Note [An archive without HACL's SHA-2]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# Debian 13's libpython3.13-pic.a (and libpython3.13.a) hold the built-in _sha2 module
# (sha2module.o) but not the HACL* library it calls (Modules/_hacl/libHacl_Hash_SHA2.a,
# which CPython 3.12+ links as an archive of its own and Debian does not ship), so a
# library linking it whole fails to load: "undefined symbol:
# python_hashlib_Hacl_Hash_SHA2_free_512". Where the archive has sha2module.o and no
# Hacl_Hash_SHA2.o, the build drops sha2module.o too and the interpreter library defines
# PyInit__sha2 as a module that raises ImportError (interpreter/src/python_compat.c).
# Nothing is lost: hashlib's sha224/256/384/512 come from OpenSSL (_hashlib), and the
# stdlib's own users of _sha2 (random.seed, hashlib's fallback) catch the ImportError
# and use hashlib.
set(_python_strip dynload_shlib.o)
execute_process(COMMAND ${CMAKE_AR} t ${PYFLEET_PYTHON_PIC_ARCHIVE} OUTPUT_VARIABLE _python_members
                COMMAND_ERROR_IS_FATAL ANY)
if(_python_members MATCHES "(^|\n)sha2module\.o" AND NOT _python_members MATCHES "Hacl_Hash_SHA2\.o")
  list(APPEND _python_strip sha2module.o)
  set(PYFLEET_PYTHON_WITHOUT_HACL_SHA2 ON)
  message(STATUS "pyfleet: ${PYFLEET_PYTHON_PIC_ARCHIVE} lacks HACL's SHA-2: _sha2 left out (hashlib uses OpenSSL)")
endif()
set(PYFLEET_PYTHON_NODL_ARCHIVE ${CMAKE_BINARY_DIR}/third_party/libpython${PYFLEET_PYTHON_VERSION}-pic-nodl.a)
add_custom_command(
  OUTPUT ${PYFLEET_PYTHON_NODL_ARCHIVE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/third_party
  COMMAND ${CMAKE_COMMAND} -E copy ${PYFLEET_PYTHON_PIC_ARCHIVE} ${PYFLEET_PYTHON_NODL_ARCHIVE}
  COMMAND ${CMAKE_AR} d ${PYFLEET_PYTHON_NODL_ARCHIVE} ${_python_strip}
  DEPENDS ${PYFLEET_PYTHON_PIC_ARCHIVE}
  COMMENT "libpython${PYFLEET_PYTHON_VERSION}-pic.a without ${_python_strip}")
add_custom_target(pyfleet_python_nodl DEPENDS ${PYFLEET_PYTHON_NODL_ARCHIVE})

# Header-only view of CPython for code compiled into the interpreter library or an
# extension module (symbols come from whichever CPython loads it).
add_library(pyfleet_python_headers INTERFACE)
target_include_directories(pyfleet_python_headers SYSTEM INTERFACE ${PYFLEET_PYTHON_INCLUDE})

find_package(Torch REQUIRED)          # LibTorch (libtorch-dev), CPU only: 1.13.1 or 2.6.0
# Note [Which torch releases pyfleet can support]: every interpreter's libtorch_python tags
# the TensorImpls (and from 2.2 the StorageImpls) it wraps with its own PyInterpreter;
# that is what lets N interpreters share one LibTorch. torch 1.13 has the tags on
# TensorImpl, 2.0-2.8 in c10::impl::PyObjectSlot; 2.9 made torch one interpreter per
# process (pytorch#158427) and later releases removed the field. Debian ships 1.13.1
# (Debian 12) and 2.6.0 (Debian 13), the two pyfleet builds for.
if(NOT Torch_VERSION MATCHES "^(1\\.13|2\\.[0-8])\\.")
  message(FATAL_ERROR "pyfleet supports LibTorch 1.13 and 2.0-2.8 (Debian 12's 1.13.1, Debian 13's 2.6.0); "
                      "found ${Torch_VERSION}. torch 2.9 and later keep one Python interpreter per process.")
endif()
string(REGEX MATCH "^[0-9]+\\.[0-9]+" PYFLEET_TORCH_SOVERSION "${Torch_VERSION}")
message(STATUS "pyfleet: LibTorch ${Torch_VERSION}")
find_package(absl REQUIRED)           # libabsl-dev 20220623
find_package(LibArchive REQUIRED)     # libarchive-dev
find_package(ZLIB REQUIRED)           # zlib1g-dev (CRC-32, inflate)
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)  # libssl-dev: libcrypto's SHA-256 (package pinning)
find_package(Threads REQUIRED)

# The platform's versions, for code and tests that name its files (generated pyfleet/platform.h).
add_library(pyfleet_platform INTERFACE)
configure_file(${CMAKE_CURRENT_LIST_DIR}/platform.h.in ${CMAKE_BINARY_DIR}/generated/platform/pyfleet/platform.h @ONLY)
target_include_directories(pyfleet_platform INTERFACE ${CMAKE_BINARY_DIR}/generated/platform)

# LibTorch's C++ headers and libraries without its global flags.
add_library(pyfleet_torch INTERFACE)
target_include_directories(pyfleet_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(pyfleet_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_definitions(pyfleet_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
