# SPDX-License-Identifier: Apache-2.0
# The Debian package, built by CPack from the install rules of the top-level CMakeLists.txt:
#   cmake -S . -B build && cmake --build build && cpack -G DEB --config build/CPackConfig.cmake
# gives pristine_<version>_<arch>.deb, its library stripped, and
# pristine-dbgsym_<version>_<arch>.deb with the library's debug symbols (/usr/lib/debug/.build-id).
# The version is read when cpack runs (packaging/cpack-config.cmake), so it is the build's.
set(PRISTINE_MAINTAINER "pristine maintainers <maintainers@pristine.invalid>" CACHE STRING
    "Maintainer field of the Debian package (Name <address>)")

set(CPACK_PACKAGE_NAME pristine)
set(CPACK_PACKAGE_VENDOR pristine)
set(CPACK_PACKAGE_CONTACT "${PRISTINE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "preloaded library giving new threads the process's baseline state")
# The extended description; CPack puts the summary above it and indents it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION [=[On Linux a new thread inherits the per-thread kernel state of the thread that
creates it: namespaces entered with setns or unshare, a private working
directory or file descriptor table, CPU affinity. A worker thread that entered
a container's network namespace leaks it into every thread it starts.

libpristine.so, preloaded with LD_PRELOAD or /etc/ld.so.preload into existing
binaries, gives such threads the process's baseline state instead, by handing
their creation to a thread still in that state, and reports where tainted
creates came from. Privileges are never raised. The package has the library,
the pristine-run wrapper, the pristine-report tool, the opt-in header
pristine.h and a pkg-config file.]=])
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "python3")
# libc6, and the C++ runtime and libdw of pristine-scan and pristine-symbolize: dpkg-shlibdeps.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# Call-site stacks use libunwind when it is there (loaded lazily, glibc's backtrace otherwise);
# pristine-report demangles names with c++filt.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "libunwind8, binutils")
# Two packages, from the install components: pristine (runtime, the library stripped) and
# pristine-dbgsym (its debug symbols: needs a build with debug information, the default
# RelWithDebInfo). CPack's own CPACK_DEBIAN_DEBUGINFO_PACKAGE is not used: its md5sums name the
# staging directory, and its package has no documentation directory.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dbgsym)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME pristine)
set(CPACK_DEBIAN_DBGSYM_PACKAGE_NAME pristine-dbgsym)
set(CPACK_DEBIAN_DBGSYM_PACKAGE_SECTION debug)
set(CPACK_DEBIAN_DBGSYM_DESCRIPTION "debug symbols for pristine
The debug symbols of libpristine.so, found by debuggers through the
library's build id.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Removal is refused while /etc/ld.so.preload still names the library (packaging/prerm).
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/prerm)
# The install rules' pkg-config file must name /usr, not CPack's staging directory.
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/cpack-config.cmake)
set(CPACK_PRISTINE_VERSION_FILE ${PRISTINE_GENERATED_DIR}/version.txt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})  # replaced when cpack runs
include(CPack)
