// SPDX-License-Identifier: Apache-2.0
// A JSON string literal for the tools' --json output: quotes and backslashes
// escaped, control bytes as \u00XX (names and paths come from other processes
// and from files, and may hold anything).
#ifndef PRISTINE_TOOLS_JSON_STRING_H_
#define PRISTINE_TOOLS_JSON_STRING_H_

#include <cstdio>
#include <string>

namespace pristine_tools {

inline std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace pristine_tools

#endif  // PRISTINE_TOOLS_JSON_STRING_H_
