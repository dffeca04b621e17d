# Every external dependency comes from a Debian package; nothing is vendored.
# scripts/deps installs them. This file only finds them and names the results.

# Debian's own python3 (3.11.2, the one python3-torch is built for), never a pyenv one.
set(PYFLEET_PYTHON /usr/bin/python3 CACHE FILEPATH "Debian's python3 (must have torch 1.13)")
execute_process(
  COMMAND ${PYFLEET_PYTHON} -c "import sysconfig as s; print(s.get_config_var('LIBPL')); print(s.get_paths()['include']); print(s.get_config_var('EXT_SUFFIX')); print(s.get_paths()['stdlib']); print(s.get_paths()['platstdlib'] + '/lib-dynload')"
  OUTPUT_VARIABLE _pyinfo OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
string(REPLACE "\n" ";" _pyinfo "${_pyinfo}")
list(GET _pyinfo 0 PYFLEET_PYTHON_LIBPL)
list(GET _pyinfo 1 PYFLEET_PYTHON_INCLUDE)
list(GET _pyinfo 2 PYFLEET_PYTHON_EXT_SUFFIX)
list(GET _pyinfo 3 PYFLEET_PYTHON_STDLIB)
list(GET _pyinfo 4 PYFLEET_PYTHON_DYNLOAD)
# CPython itself: Debian's PIC archive (the default and the fallback), or the PGO+LTO
# build of Debian's own CPython source that scripts/build-python caches in .cache/cpython
# (Note [An LTO build of Debian's CPython] there), or any archive named here.
set(PYFLEET_PYTHON_ARCHIVE "" CACHE FILEPATH
    "a PIC libpython3.11 archive to embed instead of Debian's libpython3.11-pic.a")
set(_built_python ${CMAKE_SOURCE_DIR}/.cache/cpython/libpython3.11-pic-lto.a)
if(PYFLEET_PYTHON_ARCHIVE)
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${PYFLEET_PYTHON_ARCHIVE})
elseif(EXISTS ${_built_python} AND NOT PYFLEET_SANITIZE)
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${_built_python})
else()
  set(PYFLEET_PYTHON_PIC_ARCHIVE ${PYFLEET_PYTHON_LIBPL}/libpython3.11-pic.a)
endif()
if(NOT EXISTS ${PYFLEET_PYTHON_PIC_ARCHIVE})
  message(FATAL_ERROR "missing ${PYFLEET_PYTHON_PIC_ARCHIVE}: apt-get install libpython3.11-dev")
endif()
message(STATUS "pyfleet: CPython from ${PYFLEET_PYTHON_PIC_ARCHIVE}")

# The embedded interpreter links CPython minus dynload_shlib.o: pyfleet supplies its own
# _PyImport_FindSharedFuncptr (see interpreter/src/dynload.cpp).
set(PYFLEET_PYTHON_NODL_ARCHIVE ${CMAKE_BINARY_DIR}/third_party/libpython3.11-pic-nodl.a)
add_custom_command(
  OUTPUT ${PYFLEET_PYTHON_NODL_ARCHIVE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/third_party
  COMMAND ${CMAKE_COMMAND} -E copy ${PYFLEET_PYTHON_PIC_ARCHIVE} ${PYFLEET_PYTHON_NODL_ARCHIVE}
  COMMAND ${CMAKE_AR} d ${PYFLEET_PYTHON_NODL_ARCHIVE} dynload_shlib.o
  DEPENDS ${PYFLEET_PYTHON_PIC_ARCHIVE}
  COMMENT "libpython3.11-pic.a without dynload_shlib.o")
add_custom_target(pyfleet_python_nodl DEPENDS ${PYFLEET_PYTHON_NODL_ARCHIVE})

# Header-only view of CPython for code compiled into the interpreter library or an
# extension module (symbols come from whichever CPython loads it).
add_library(pyfleet_python_headers INTERFACE)
target_include_directories(pyfleet_python_headers SYSTEM INTERFACE ${PYFLEET_PYTHON_INCLUDE})

find_package(Torch REQUIRED)          # LibTorch 1.13.1 (libtorch-dev), CPU only
find_package(absl REQUIRED)           # libabsl-dev 20220623
find_package(LibArchive REQUIRED)     # libarchive-dev
find_package(ZLIB REQUIRED)           # zlib1g-dev (CRC-32, inflate)
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto)  # libssl-dev: libcrypto's SHA-256 (package pinning)
find_package(Threads REQUIRED)

# LibTorch's C++ headers and libraries without its global flags.
add_library(pyfleet_torch INTERFACE)
target_include_directories(pyfleet_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(pyfleet_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_definitions(pyfleet_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
