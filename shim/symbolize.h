// SPDX-License-Identifier: Apache-2.0
// Turning return addresses into (function, offset, module), at report time.
//
// Names come from the module's ELF symbol table (.symtab) read from disk, so
// static functions are named too, or from its dynamic symbols (.dynsym) when
// the file has no .symtab (stripped system libraries), or from dladdr(). The
// module file is mapped once per Symbolizer and its function symbols sorted
// into an index; each lookup is then a binary search. Names are the raw
// (mangled) ELF names: the shim has no C++ runtime to demangle with;
// pristine-report demangles.
//
// Who may use it: the exit-time report writer and the new-site log line, on
// an ordinary thread of the host (it enters the dynamic loader and maps
// files); never the template thread. Not thread-safe: one Symbolizer per use.
#ifndef PRISTINE_SHIM_SYMBOLIZE_H_
#define PRISTINE_SHIM_SYMBOLIZE_H_

#include <cstddef>
#include <cstdint>

namespace pristine {

struct SymbolizedFrame {
  // The function containing the address, or null if unknown. Not
  // NUL-terminated necessarily: use function_len. Valid while the Symbolizer
  // that produced it lives.
  const char* function = nullptr;
  size_t function_len = 0;
  // Address minus the function's start when the function is known, else the
  // address relative to the module's load bias (what `addr2line -e MODULE`
  // takes), else the raw address.
  uint64_t offset = 0;
  // The module's path, NUL-terminated ("?" if the address is in no module).
  const char* module = "?";
};

class Symbolizer {
 public:
  // `read_files`: whether symbol tables may be read from disk (false: dladdr
  // only, which sees exported names; cheap enough for a log line).
  explicit Symbolizer(bool read_files) : read_files_(read_files) {}
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // `pc` is a return address (the instruction after a call).
  void Symbolize(uintptr_t pc, SymbolizedFrame* out);

 private:
  struct FuncSym {
    uint64_t value;
    uint64_t size;
    uint32_t name;  // offset in the string table
  };
  struct Module {
    const void* link_map;  // the key
    uintptr_t bias;        // l_addr
    char path[512];
    bool loaded;           // symbols read (or tried)
    const char* file;      // the mapped file, or null
    size_t file_size;
    const char* strtab;
    size_t strtab_size;
    FuncSym* syms;         // sorted by value; anonymous mapping
    size_t nsyms;
    size_t syms_bytes;
  };
  static constexpr int kMaxModules = 32;

  Module* FindModule(const void* link_map, uintptr_t bias, const char* name);
  void LoadSymbols(Module* m);

  bool read_files_;
  int nmodules_ = 0;
  Module modules_[kMaxModules];
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_SYMBOLIZE_H_
