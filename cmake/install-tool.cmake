# SPDX-License-Identifier: Apache-2.0
# The installed copy of a tool of scripts/ (cmake -P, at build time):
#   cmake -DIN=scripts/TOOL -DOUT=... -DLIBDIR=../lib/<triplet>/pristine -DVERSION_FILE=... -P
# Replaces the lines `INSTALLED_LIBDIR = None` and `INSTALLED_VERSION = None` (or `VERSION = None`)
# (Python) with the library directory relative to bin/ and the version; a tool without them is
# copied unchanged.
file(READ "${IN}" text)
file(READ "${VERSION_FILE}" version)
string(STRIP "${version}" version)
string(REPLACE "\nINSTALLED_LIBDIR = None\n" "\nINSTALLED_LIBDIR = \"${LIBDIR}\"\n" text "${text}")
string(REPLACE "\nINSTALLED_VERSION = None\n" "\nINSTALLED_VERSION = \"${version}\"\n" text "${text}")
string(REPLACE "\nVERSION = None\n" "\nVERSION = \"${version}\"\n" text "${text}")
file(WRITE "${OUT}" "${text}")
