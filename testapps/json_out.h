// SPDX-License-Identifier: Apache-2.0
// Tiny hand-written JSON emitter for the test apps (no external libraries).
//
//   JsonWriter w;
//   w.begin_object();
//   w.key("a"); w.value(1);
//   w.key("b"); w.begin_array(); w.value("x"); w.end_array();
//   w.end_object();
//   puts(w.str().c_str());
//
// Commas are inserted automatically; the writer does not validate nesting.
#ifndef PRISTINE_TESTAPPS_JSON_OUT_H_
#define PRISTINE_TESTAPPS_JSON_OUT_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(const std::string& k) {
    comma();
    string_literal(k);
    out_ += ':';
    after_key_ = true;
  }

  void value(const std::string& s) { comma(); string_literal(s); }
  void value(const char* s) {
    if (s == nullptr) { null(); return; }
    value(std::string(s));
  }
  void value(bool b) { comma(); out_ += b ? "true" : "false"; }
  void value(int v) { value(static_cast<long long>(v)); }
  void value(long v) { value(static_cast<long long>(v)); }
  void value(unsigned v) { value(static_cast<unsigned long long>(v)); }
  void value(unsigned long v) { value(static_cast<unsigned long long>(v)); }
  void value(long long v) { comma(); out_ += std::to_string(v); }
  void value(unsigned long long v) { comma(); out_ += std::to_string(v); }
  void null() { comma(); out_ += "null"; }
  // Splices an already serialized JSON value.
  void raw(const std::string& json) { comma(); out_ += json; }

  const std::string& str() const { return out_; }

 private:
  void open(char c) {
    comma();
    out_ += c;
    first_.push_back(true);
  }
  void close(char c) {
    out_ += c;
    if (!first_.empty()) first_.pop_back();
  }
  void comma() {
    if (after_key_) { after_key_ = false; return; }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void string_literal(const std::string& s) {
    out_ += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += static_cast<char>(c);
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

#endif  // PRISTINE_TESTAPPS_JSON_OUT_H_
