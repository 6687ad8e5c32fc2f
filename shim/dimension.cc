// SPDX-License-Identifier: Apache-2.0
#include "dimension.h"

#include <cstring>

namespace pristine {

bool DimFromName(const char* name, unsigned len, Dim* out) {
  for (int i = 0; i < kDimCount; ++i) {
    const char* key = dimension_internal::kTable[i].key;
    if (strlen(key) == len && memcmp(key, name, len) == 0) {
      *out = static_cast<Dim>(i);
      return true;
    }
  }
  return false;
}

}  // namespace pristine
