// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the report's JSON writer (shim/json_writer.h, used by shim/report.cc).
//
// The input drives a well-nested sequence of writer calls (objects, arrays, keys and strings with
// arbitrary bytes, numbers, nulls; enough output to cross the 4 KiB buffer many times) into a
// memfd. The output is then parsed by a strict RFC 8259 parser written here, and every string and
// number read back must equal, in order, what was written: escaping loses nothing and always
// produces valid JSON, whatever the bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "json_writer.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "json_writer_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

struct Token {
  bool is_string;
  std::string s;
  uint64_t u;
};

// Strict parser; appends strings and numbers in document order.
struct Parser {
  const std::string& in;
  size_t i = 0;
  std::vector<Token>* out;
  int depth = 0;

  void Ws() {
    while (i < in.size() && (in[i] == ' ' || in[i] == '\n' || in[i] == '\r' || in[i] == '\t')) ++i;
  }
  bool Lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (in.compare(i, n, w) != 0) return false;
    i += n;
    return true;
  }
  int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool String(std::string* s) {
    if (i >= in.size() || in[i] != '"') return false;
    ++i;
    while (i < in.size()) {
      unsigned char c = static_cast<unsigned char>(in[i++]);
      if (c == '"') return true;
      if (c < 0x20) return false;  // raw control characters are invalid JSON
      if (c != '\\') {
        s->push_back(static_cast<char>(c));
        continue;
      }
      if (i >= in.size()) return false;
      char e = in[i++];
      switch (e) {
        case '"': s->push_back('"'); break;
        case '\\': s->push_back('\\'); break;
        case '/': s->push_back('/'); break;
        case 'b': s->push_back('\b'); break;
        case 'f': s->push_back('\f'); break;
        case 'n': s->push_back('\n'); break;
        case 'r': s->push_back('\r'); break;
        case 't': s->push_back('\t'); break;
        case 'u': {
          if (i + 4 > in.size()) return false;
          int v = 0;
          for (int k = 0; k < 4; ++k) {
            int h = Hex(in[i + k]);
            if (h < 0) return false;
            v = v * 16 + h;
          }
          i += 4;
          if (v >= 0x80) return false;  // the writer only escapes control characters
          s->push_back(static_cast<char>(v));
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool Number(uint64_t* v) {
    size_t start = i;
    while (i < in.size() && in[i] >= '0' && in[i] <= '9') ++i;
    if (i == start) return false;
    if (in[start] == '0' && i - start > 1) return false;  // no leading zeros
    *v = std::strtoull(in.substr(start, i - start).c_str(), nullptr, 10);
    return true;
  }
  bool Value() {
    if (++depth > 10000) return false;
    Ws();
    if (i >= in.size()) return false;
    bool ok;
    char c = in[i];
    if (c == '{') {
      ++i;
      Ws();
      if (i < in.size() && in[i] == '}') {
        ++i;
        ok = true;
      } else {
        ok = false;
        while (true) {
          Ws();
          std::string k;
          if (!String(&k)) break;
          out->push_back({true, k, 0});
          Ws();
          if (i >= in.size() || in[i++] != ':') break;
          if (!Value()) break;
          Ws();
          if (i < in.size() && in[i] == ',') { ++i; continue; }
          if (i < in.size() && in[i] == '}') { ++i; ok = true; }
          break;
        }
      }
    } else if (c == '[') {
      ++i;
      Ws();
      if (i < in.size() && in[i] == ']') {
        ++i;
        ok = true;
      } else {
        ok = false;
        while (true) {
          if (!Value()) break;
          Ws();
          if (i < in.size() && in[i] == ',') { ++i; continue; }
          if (i < in.size() && in[i] == ']') { ++i; ok = true; }
          break;
        }
      }
    } else if (c == '"') {
      std::string s;
      ok = String(&s);
      if (ok) out->push_back({true, s, 0});
    } else if (c == 'n') {
      ok = Lit("null");
    } else {
      uint64_t v;
      ok = Number(&v);
      if (ok) out->push_back({false, "", v});
    }
    --depth;
    return ok;
  }
};

struct Input {
  const uint8_t* d;
  size_t n;
  size_t i = 0;
  bool Empty() const { return i >= n; }
  uint8_t Byte() { return i < n ? d[i++] : 0; }
  std::string Str() {
    size_t len = Byte();
    if (len == 255) len = 255 + static_cast<size_t>(Byte()) * 64;  // sometimes long strings
    std::string s;
    for (size_t k = 0; k < len && i < n; ++k) s.push_back(static_cast<char>(d[i++]));
    return s;
  }
  uint64_t U64() {
    uint64_t v = 0;
    int bytes = Byte() % 9;
    for (int k = 0; k < bytes; ++k) v = (v << 8) | Byte();
    return v;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = memfd_create("json", MFD_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<Token> written;
  bool flushed;
  {
    pristine::JsonWriter w(fd);
    Input in{data, size};
    std::vector<bool> stack;  // true: object, false: array
    w.BeginObject();
    stack.push_back(true);
    int ops = 0;
    while (!in.Empty() && ops++ < 20000) {
      uint8_t op = in.Byte() % 7;
      if (op == 6) {  // close the innermost container (the top-level one stays open)
        if (stack.size() > 1) {
          if (stack.back()) w.EndObject();
          else w.EndArray();
          stack.pop_back();
        }
        continue;
      }
      if (stack.back()) {  // inside an object: a key comes first (Key takes a C string)
        std::string k = in.Str();
        const char* key = k.c_str();
        w.Key(key);
        written.push_back({true, std::string(key), 0});
      }
      switch (op) {
        case 0:
          if (stack.size() < 400) {
            w.BeginObject();
            stack.push_back(true);
          } else {
            w.Null();
          }
          break;
        case 1:
          if (stack.size() < 400) {
            w.BeginArray();
            stack.push_back(false);
          } else {
            w.Null();
          }
          break;
        case 2:
        case 3: {
          std::string v = in.Str();
          w.StringN(v.data(), v.size());
          written.push_back({true, v, 0});
          break;
        }
        case 4: {
          uint64_t u = in.U64();
          w.Uint(u);
          written.push_back({false, "", u});
          break;
        }
        default:
          w.Null();
          break;
      }
    }
    while (!stack.empty()) {
      if (stack.back()) w.EndObject();
      else w.EndArray();
      stack.pop_back();
    }
    w.EndLine();
    flushed = w.Flush();
  }
  Check(flushed, "Flush succeeded");
  off_t len = lseek(fd, 0, SEEK_END);
  std::string out(static_cast<size_t>(len), '\0');
  Check(pread(fd, &out[0], out.size(), 0) == len, "read back");
  close(fd);

  Check(!out.empty() && out.back() == '\n', "ends with a newline");
  Check(out.find('\n') == out.size() - 1, "one line");
  std::vector<Token> read;
  Parser p{out, 0, &read};
  Check(p.Value(), "valid JSON");
  p.Ws();
  Check(p.i == out.size(), "nothing after the value");
  Check(read.size() == written.size(), "as many strings and numbers as written");
  for (size_t k = 0; k < read.size(); ++k) {
    Check(read[k].is_string == written[k].is_string, "token kind");
    Check(read[k].s == written[k].s, "string round trip");
    Check(read[k].u == written[k].u, "number round trip");
  }
  return 0;
}
