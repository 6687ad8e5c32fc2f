// SPDX-License-Identifier: Apache-2.0
// From return addresses to what a report or a log line says about them.
//
// Reports: the library records only what it knows without reading a file:
// the loaded module's path, its build id (read from the module's PT_NOTE in
// memory) and the address relative to the module's load bias (the ELF
// virtual address, what addr2line takes). pristine-report turns those into
// function names, source lines and inlined frames with elfutils' libdw, from
// the module or its build-id debug file.
//
// Log lines: one frame named on the spot, the first in the program's own
// code. The executable's static functions are in its .symtab, which is not
// loaded in memory: it is read through a descriptor opened at load (in the
// baseline; never a path resolved on a tainted thread), with bounded pread
// calls, never mmap (a file truncated under us must not crash the host).
// Other modules' names come from their dynamic symbols (dladdr). C++ names
// are demangled with the host's own __cxa_demangle when the host has the C++
// runtime loaded (the library itself never loads it).
//
// Who may use it: any thread of the host but the template (dl_iterate_phdr
// and dladdr take the loader's lock).
#ifndef PRISTINE_SHIM_SYMBOLIZE_H_
#define PRISTINE_SHIM_SYMBOLIZE_H_

#include <link.h>

#include <cstddef>
#include <cstdint>

namespace pristine {

// The modules loaded in the process, listed once per report write.
class ModuleMap {
 public:
  // No default member initializers: a ModuleMap lives in fresh anonymous
  // memory, and Load fills what it uses.
  struct Module {
    uintptr_t bias;
    uintptr_t lo, hi;  // the span of its executable segments
    bool is_exe;
    char build_id[41];  // hex, up to 20 bytes; empty if none
    char path[512];
  };

  // Lists the loaded modules; `exe_path` names the main program (its link
  // map has no name), null to leave it unnamed.
  void Load(const char* exe_path);

  // The module whose executable segments contain `pc`, or null.
  const Module* Find(uintptr_t pc) const;

 private:
  static constexpr int kMaxModules = 128;
  int n_ = 0;
  Module modules_[kMaxModules];
  friend int ModuleMapCallback(struct dl_phdr_info*, size_t, void*);
};

// Opens the executable for its symbol table (log lines). Loading thread, at
// load, only when log lines may name frames.
void SymbolizeInit();

// Writes "function+0xOFF (module)" for `pc` in `m` (or "module+0xADDR" when no
// name is known), NUL-terminated, into `out`. Names are demangled when the
// host has the C++ runtime.
void DescribeFrame(const ModuleMap::Module* m, uintptr_t pc, char* out, size_t cap);

// The index of the first frame in the program's own code: the first in the
// executable, else the first outside the C and C++ runtimes, else 0.
int FirstProgramFrame(const ModuleMap& modules, const uintptr_t* pcs, int n);

}  // namespace pristine

#endif  // PRISTINE_SHIM_SYMBOLIZE_H_
