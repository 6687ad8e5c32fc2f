// SPDX-License-Identifier: Apache-2.0
#include "symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "interpose.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

using Ehdr = ElfW(Ehdr);
using Shdr = ElfW(Shdr);
using Sym = ElfW(Sym);
static_assert(sizeof(void*) == 8, "64-bit ELF only (x86_64, aarch64)");

void* MapAnon(size_t bytes) {
  long p = RawSyscall6(SYS_mmap, 0, static_cast<long>(bytes), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p < 0 && p > -4096 ? nullptr : reinterpret_cast<void*>(p);
}

// Maps `path` read-only; null on failure.
const char* MapFile(const char* path, size_t* size) {
  long fd = RawSyscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  const char* base = nullptr;
  if (RawSyscall(SYS_fstat, fd, &st) == 0 && st.st_size >= static_cast<off_t>(sizeof(Ehdr))) {
    long p = RawSyscall6(SYS_mmap, 0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (!(p < 0 && p > -4096)) {
      base = reinterpret_cast<const char*>(p);
      *size = static_cast<size_t>(st.st_size);
    }
  }
  RawSyscall(SYS_close, fd);
  return base;
}

// Heap sort by value: no allocation, O(n log n) for large symbol tables.
template <typename T>
void SortByValue(T* a, size_t n) {
  auto sift = [&](size_t root, size_t end) {
    while (2 * root + 1 < end) {
      size_t child = 2 * root + 1;
      if (child + 1 < end && a[child].value < a[child + 1].value) ++child;
      if (!(a[root].value < a[child].value)) return;
      T t = a[root];
      a[root] = a[child];
      a[child] = t;
      root = child;
    }
  };
  for (size_t i = n / 2; i-- > 0;) sift(i, n);
  for (size_t end = n; end-- > 1;) {
    T t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(0, end);
  }
}

size_t BoundedLen(const char* s, size_t max) {
  size_t n = 0;
  while (n < max && s[n] != '\0') ++n;
  return n;
}

}  // namespace

Symbolizer::~Symbolizer() {
  for (int i = 0; i < nmodules_; ++i) {
    Module& m = modules_[i];
    if (m.file != nullptr) RawSyscall(SYS_munmap, m.file, m.file_size);
    if (m.syms != nullptr) RawSyscall(SYS_munmap, m.syms, m.syms_bytes);
  }
}

Symbolizer::Module* Symbolizer::FindModule(const void* link_map, uintptr_t bias,
                                           const char* name) {
  for (int i = 0; i < nmodules_; ++i) {
    if (modules_[i].link_map == link_map) return &modules_[i];
  }
  if (nmodules_ == kMaxModules) return nullptr;
  Module& m = modules_[nmodules_++];
  memset(&m, 0, sizeof m);
  m.link_map = link_map;
  m.bias = bias;
  if (name == nullptr || name[0] == '\0') {
    // The main program's link map has no name.
    long n = RawSyscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", m.path, sizeof m.path - 1);
    if (n < 0) n = 0;
    m.path[n] = '\0';
  } else {
    size_t n = BoundedLen(name, sizeof m.path - 1);
    memcpy(m.path, name, n);
    m.path[n] = '\0';
  }
  return &m;
}

void Symbolizer::LoadSymbols(Module* m) {
  m->loaded = true;
  if (!read_files_ || m->path[0] != '/') return;
  size_t size = 0;
  const char* f = MapFile(m->path, &size);
  if (f == nullptr) return;
  m->file = f;
  m->file_size = size;
  const Ehdr* eh = reinterpret_cast<const Ehdr*>(f);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shentsize != sizeof(Shdr) || eh->e_shoff == 0 ||
      eh->e_shoff + static_cast<uint64_t>(eh->e_shnum) * sizeof(Shdr) > size) {
    return;
  }
  const Shdr* sh = reinterpret_cast<const Shdr*>(f + eh->e_shoff);
  // .symtab (every function, static ones included) if present, else .dynsym.
  const Shdr* symtab = nullptr;
  static const uint32_t kWanted[] = {SHT_SYMTAB, SHT_DYNSYM};
  for (uint32_t want : kWanted) {
    for (int i = 0; i < eh->e_shnum && symtab == nullptr; ++i) {
      if (sh[i].sh_type == want) symtab = &sh[i];
    }
  }
  if (symtab == nullptr || symtab->sh_link >= eh->e_shnum ||
      symtab->sh_offset + symtab->sh_size > size || symtab->sh_entsize != sizeof(Sym)) {
    return;
  }
  const Shdr& strsh = sh[symtab->sh_link];
  if (strsh.sh_offset + strsh.sh_size > size) return;
  m->strtab = f + strsh.sh_offset;
  m->strtab_size = strsh.sh_size;
  const Sym* syms = reinterpret_cast<const Sym*>(f + symtab->sh_offset);
  size_t n = symtab->sh_size / sizeof(Sym);
  size_t funcs = 0;
  for (size_t i = 0; i < n; ++i) {
    int type = ELF64_ST_TYPE(syms[i].st_info);
    if ((type == STT_FUNC || type == STT_GNU_IFUNC) && syms[i].st_shndx != SHN_UNDEF) ++funcs;
  }
  if (funcs == 0) return;
  m->syms_bytes = funcs * sizeof(FuncSym);
  m->syms = static_cast<FuncSym*>(MapAnon(m->syms_bytes));
  if (m->syms == nullptr) return;
  for (size_t i = 0; i < n; ++i) {
    int type = ELF64_ST_TYPE(syms[i].st_info);
    if ((type == STT_FUNC || type == STT_GNU_IFUNC) && syms[i].st_shndx != SHN_UNDEF &&
        syms[i].st_name < m->strtab_size) {
      m->syms[m->nsyms++] = FuncSym{syms[i].st_value, syms[i].st_size, syms[i].st_name};
    }
  }
  SortByValue(m->syms, m->nsyms);
}

void Symbolizer::Symbolize(uintptr_t pc, SymbolizedFrame* out) {
  *out = SymbolizedFrame{};
  out->offset = pc;
  // A return address may be one past the end of the calling function (a
  // call to a noreturn function): look up the call instruction instead.
  uintptr_t lookup = pc - 1;
  Dl_info info;
  struct link_map* lm = nullptr;
  if (LIBC(dladdr1)(reinterpret_cast<void*>(lookup), &info, reinterpret_cast<void**>(&lm),
              RTLD_DL_LINKMAP) == 0 || lm == nullptr) {
    return;
  }
  Module* m = FindModule(lm, lm->l_addr, lm->l_name);
  out->module = m != nullptr ? m->path : (info.dli_fname ? info.dli_fname : "?");
  out->offset = pc - lm->l_addr;
  if (m != nullptr) {
    if (!m->loaded) LoadSymbols(m);
    uint64_t vaddr = lookup - m->bias;
    // The last symbol starting at or before vaddr.
    size_t lo = 0, hi = m->nsyms;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (m->syms[mid].value <= vaddr) lo = mid + 1;
      else hi = mid;
    }
    // Walk back over aliases and zero-sized symbols to one that contains it.
    for (size_t i = lo; i-- > 0 && lo - i <= 8;) {
      const FuncSym& s = m->syms[i];
      if (vaddr >= s.value && (vaddr < s.value + s.size || s.size == 0)) {
        out->function = m->strtab + s.name;
        out->function_len = BoundedLen(out->function, m->strtab_size - s.name);
        out->offset = vaddr + 1 - s.value;
        return;
      }
    }
  }
  if (info.dli_sname != nullptr && info.dli_saddr != nullptr) {
    out->function = info.dli_sname;
    out->function_len = strlen(info.dli_sname);
    out->offset = pc - reinterpret_cast<uintptr_t>(info.dli_saddr);
  }
}

}  // namespace pristine
