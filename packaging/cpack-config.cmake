# SPDX-License-Identifier: Apache-2.0
# Read by cpack when it runs (CPACK_PROJECT_CONFIG_FILE): the version of the build being packaged
# (written at build time by cmake/version.cmake), and the prefix the pkg-config file must name
# (CPack installs into a staging directory: the install rule reads PRISTINE_PC_PREFIX), and the
# split of the library's debug symbols into pristine-dbgsym (PRISTINE_SPLIT_DEBUG).
file(READ "${CPACK_PRISTINE_VERSION_FILE}" _pristine_version)
string(STRIP "${_pristine_version}" _pristine_version)
set(CPACK_PACKAGE_VERSION "${_pristine_version}")
set(CPACK_DEBIAN_PACKAGE_VERSION "${_pristine_version}")
set(ENV{PRISTINE_PC_PREFIX} "${CPACK_PACKAGING_INSTALL_PREFIX}")
set(ENV{PRISTINE_SPLIT_DEBUG} 1)
set(CPACK_DEBIAN_DBGSYM_PACKAGE_DEPENDS "pristine (= ${_pristine_version})")
