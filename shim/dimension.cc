// SPDX-License-Identifier: Apache-2.0
#include "dimension.h"

#include <cstring>

namespace pristine {
namespace {

constexpr const char* kNames[kDimCount] = {
    "net",  "uts",      "ipc",     "mnt",  "cgroup", "pid",
    "time", "fs",       "files",   "affinity", "sigmask", "sched",
    "name", "caps",     "nnp",     "seccomp",  "landlock", "creds",
};

}  // namespace

const char* DimName(Dim d) {
  int i = static_cast<int>(d);
  return i >= 0 && i < kDimCount ? kNames[i] : "?";
}

bool DimFromName(const char* name, unsigned len, Dim* out) {
  for (int i = 0; i < kDimCount; ++i) {
    if (strlen(kNames[i]) == len && memcmp(kNames[i], name, len) == 0) {
      *out = static_cast<Dim>(i);
      return true;
    }
  }
  return false;
}

}  // namespace pristine
