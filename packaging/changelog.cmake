# SPDX-License-Identifier: Apache-2.0
# The package's changelog (Debian format), at build time:
#   cmake -DIN=packaging/changelog -DOUT=... -DVERSION_FILE=... -DSOURCE_DIR=... -P changelog.cmake
# packaging/changelog holds the entries written by hand, the newest first. A build of another
# version (a commit after the newest entry's release, scripts/version) gets an entry of its own on
# top, dated with the commit (reproducible), so that the changelog and the package agree.
file(READ "${IN}" text)
file(READ "${VERSION_FILE}" version)
string(STRIP "${version}" version)
string(REGEX MATCH "^pristine \\(([^)]*)\\)" _ "${text}")
set(top "${CMAKE_MATCH_1}")
string(REGEX MATCH "\n -- ([^\n]*>)  " _ "${text}")
set(maintainer "${CMAKE_MATCH_1}")
if(NOT version STREQUAL top)
  execute_process(COMMAND git -C "${SOURCE_DIR}" log -1 --format=%ct
                  OUTPUT_VARIABLE epoch OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND epoch MATCHES "^[0-9]+$")
    set(ENV{SOURCE_DATE_EPOCH} "${epoch}")
  endif()
  string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)
  set(text "pristine (${version}) unstable; urgency=medium

  * Development snapshot after ${top}; the source repository's history
    has the changes.

 -- ${maintainer}  ${date}

${text}")
endif()
file(WRITE "${OUT}" "${text}")
