# SPDX-License-Identifier: MIT
#
# Toolchain file: cross-compile goc for 64-bit Arm Linux with Debian's
# cross gcc (packages gcc-aarch64-linux-gnu and libc6-dev-arm64-cross), and
# run the built programs -- ctest's tests included -- under qemu-aarch64
# (package qemu-user).
#
#   cmake -S . -B build-aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 -j2
#   ctest --test-dir build-aarch64 -L core

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# Debian installs the target's headers and libraries under this prefix; the
# cross gcc already searches it, and find_*() should look only there.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# add_test(NAME ... COMMAND <executable target> ...) then runs the test as
# `qemu-aarch64 -L /usr/aarch64-linux-gnu <test> ...`; -L points qemu at the
# target's dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-aarch64;-L;/usr/aarch64-linux-gnu")
