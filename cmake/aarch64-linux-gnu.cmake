# Cross-compiling for arm64 (aarch64) with Debian's cross toolchain (crossbuild-essential-arm64)
# and the multiarch -dev packages (libmodbus-dev:arm64, ...): deploy/arm64.sh installs both.
# Tests run under qemu-user: ctest starts each test through CMAKE_CROSSCOMPILING_EMULATOR, and
# the tests that start the real bmsfleet binary need binfmt_misc (deploy/arm64.sh checks it).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_STRIP aarch64-linux-gnu-strip CACHE FILEPATH "")

# The arm64 .pc files only, never the host's; the multiarch headers and libraries live under /usr.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)

# No -L: the multiarch libc6:arm64 (pulled in by the -dev packages) puts the arm64 loader at
# /lib/ld-linux-aarch64.so.1 and every library under /usr/lib/aarch64-linux-gnu, where the
# loader looks, the same layout that binfmt_misc gives the binaries the tests start.
find_program(BMSFLEET_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(BMSFLEET_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BMSFLEET_QEMU_AARCH64})
endif()
