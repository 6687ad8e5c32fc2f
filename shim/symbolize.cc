// SPDX-License-Identifier: Apache-2.0
#include "absl/base/attributes.h"
#include "symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>

#include "dlsym.h"
#include "interpose.h"
#include "raw_syscall.h"

namespace pristine {

static_assert(sizeof(void*) == 8, "64-bit ELF only (x86_64, aarch64)");

namespace {

size_t BoundedLen(const char* s, size_t max) {
  size_t n = 0;
  while (n < max && s[n] != '\0') ++n;
  return n;
}

void CopyString(char* dst, size_t cap, const char* src) {
  size_t n = BoundedLen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

// The build id from a module's notes, as mapped in memory. Only notes inside
// a loaded segment's file-backed part are read; every length is bounded.
void ReadBuildId(const struct dl_phdr_info* info, char out[41]) {
  out[0] = '\0';
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& note = info->dlpi_phdr[i];
    if (note.p_type != PT_NOTE) continue;
    bool mapped = false;
    for (int j = 0; j < info->dlpi_phnum && !mapped; ++j) {
      const ElfW(Phdr)& load = info->dlpi_phdr[j];
      mapped = load.p_type == PT_LOAD && note.p_vaddr >= load.p_vaddr &&
               note.p_vaddr + note.p_memsz <= load.p_vaddr + load.p_filesz;
    }
    if (!mapped) continue;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + note.p_vaddr);
    size_t left = note.p_memsz;
    while (left >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) nh;
      memcpy(&nh, p, sizeof nh);
      size_t name = (static_cast<size_t>(nh.n_namesz) + 3) & ~size_t{3};
      size_t desc = (static_cast<size_t>(nh.n_descsz) + 3) & ~size_t{3};
      if (nh.n_namesz > left || nh.n_descsz > left ||
          sizeof nh + name + desc > left) {
        break;
      }
      const unsigned char* np = p + sizeof nh;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(np, "GNU", 4) == 0 &&
          nh.n_descsz > 0 && nh.n_descsz <= 20) {
        static const char kHex[] = "0123456789abcdef";
        const unsigned char* d = np + name;
        for (uint32_t k = 0; k < nh.n_descsz; ++k) {
          out[2 * k] = kHex[d[k] >> 4];
          out[2 * k + 1] = kHex[d[k] & 15];
        }
        out[2 * nh.n_descsz] = '\0';
        return;
      }
      p += sizeof nh + name + desc;
      left -= sizeof nh + name + desc;
    }
  }
}

struct LoadContext {
  ModuleMap* map;
  const char* exe_path;
};

// --- The executable's symbol table, through a descriptor opened at load ------

ABSL_CONST_INIT std::atomic<int> g_exe_fd{-1};
ABSL_CONST_INIT uint64_t g_exe_dev = 0;  // identity at load, checked before each use
ABSL_CONST_INIT uint64_t g_exe_ino = 0;

// pread of exactly `n` bytes at `off`; false on a short or failed read.
bool ReadAt(int fd, void* buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    long r = RawSyscall(SYS_pread64, fd, static_cast<char*>(buf) + got, n - got, off + got);
    if (r == -EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// Looks `vaddr` up in the executable's .symtab. Writes the symbol's name
// (truncated to `cap`) and the offset of vaddr in it. Every offset read from
// the file is checked against the file's size: the file is not trusted.
bool ExeSymbol(uint64_t vaddr, char* name, size_t cap, uint64_t* offset) {
  int fd = g_exe_fd.load(std::memory_order_acquire);
  if (fd < 0 || cap == 0) return false;
  struct stat st;
  if (RawSyscall(SYS_fstat, fd, &st) != 0 || st.st_dev != g_exe_dev || st.st_ino != g_exe_ino ||
      !S_ISREG(st.st_mode)) {
    return false;  // the program closed the descriptor and reused its number
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  ElfW(Ehdr) eh;
  if (!ReadAt(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(ElfW(Shdr)) ||
      eh.e_shoff == 0 || eh.e_shoff > size ||
      static_cast<uint64_t>(eh.e_shnum) * sizeof(ElfW(Shdr)) > size - eh.e_shoff) {
    return false;
  }
  ElfW(Shdr) symtab = {};
  bool found = false;
  for (int i = 0; i < eh.e_shnum && !found; ++i) {
    if (!ReadAt(fd, &symtab, sizeof symtab, eh.e_shoff + i * sizeof(ElfW(Shdr)))) return false;
    found = symtab.sh_type == SHT_SYMTAB;
  }
  ElfW(Shdr) strtab;
  if (!found || symtab.sh_entsize != sizeof(ElfW(Sym)) || symtab.sh_offset > size ||
      symtab.sh_size > size - symtab.sh_offset || symtab.sh_link >= eh.e_shnum ||
      !ReadAt(fd, &strtab, sizeof strtab, eh.e_shoff + symtab.sh_link * sizeof(ElfW(Shdr))) ||
      strtab.sh_offset > size || strtab.sh_size > size - strtab.sh_offset) {
    return false;
  }
  // The function symbol containing vaddr (one pass, in chunks).
  ElfW(Sym) best = {};
  bool have = false;
  ElfW(Sym) chunk[128];
  uint64_t count = symtab.sh_size / sizeof(ElfW(Sym));
  for (uint64_t i = 0; i < count;) {
    uint64_t k = count - i < 128 ? count - i : 128;
    if (!ReadAt(fd, chunk, k * sizeof(ElfW(Sym)), symtab.sh_offset + i * sizeof(ElfW(Sym)))) {
      return false;
    }
    for (uint64_t j = 0; j < k; ++j) {
      const ElfW(Sym)& s = chunk[j];
      int type = ELF64_ST_TYPE(s.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF) continue;
      if (vaddr >= s.st_value && vaddr - s.st_value < s.st_size &&
          (!have || s.st_value > best.st_value)) {
        best = s;
        have = true;
      }
    }
    i += k;
  }
  if (!have || best.st_name >= strtab.sh_size) return false;
  uint64_t room = strtab.sh_size - best.st_name;
  size_t n = room < cap - 1 ? static_cast<size_t>(room) : cap - 1;
  if (!ReadAt(fd, name, n, strtab.sh_offset + best.st_name)) return false;
  name[n] = '\0';
  if (name[0] == '\0') return false;
  *offset = vaddr - best.st_value;
  return true;
}

// Demangles `name` in place with the host's __cxa_demangle, if it has the
// C++ runtime loaded (a C++ program does). Allocates (the demangler does),
// so only on ordinary program threads outside the hot path.
void Demangle(char* name, size_t cap) {
  if (name[0] != '_' || name[1] != 'Z') return;
  using DemangleFn = char* (*)(const char*, char*, size_t*, int*);
  // libc's own dlsym: the exported one is the library's wrapper (dlsym.h).
  DlsymFn libc_dlsym = LibcDlsym();
  if (libc_dlsym == nullptr) return;
  DemangleFn fn = reinterpret_cast<DemangleFn>(libc_dlsym(RTLD_DEFAULT, "__cxa_demangle"));
  if (fn == nullptr) return;
  int status = -1;
  char* out = fn(name, nullptr, nullptr, &status);
  if (out == nullptr) return;
  if (status == 0) CopyString(name, cap, out);
  free(out);
}

const char* Basename(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

bool StartsWith(const char* s, const char* prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

// The C and C++ runtimes and the loader: never "the program's own code".
bool IsRuntime(const ModuleMap::Module& m) {
  const char* base = Basename(m.path);
  static const char* const kRuntimes[] = {"libc.so", "libstdc++.so", "libgcc_s.so",
                                          "libpthread.so", "ld-linux", "libc++.so",
                                          "libc++abi.so"};
  for (const char* r : kRuntimes) {
    if (StartsWith(base, r)) return true;
  }
  return false;
}

void AppendHex(char* out, size_t cap, size_t* n, uint64_t v) {
  char digits[16];
  int d = 0;
  do {
    digits[d++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  if (*n + 2 < cap) {
    out[(*n)++] = '0';
    out[(*n)++] = 'x';
  }
  while (d > 0 && *n + 1 < cap) out[(*n)++] = digits[--d];
  out[*n] = '\0';
}

void AppendText(char* out, size_t cap, size_t* n, const char* s) {
  while (*s && *n + 1 < cap) out[(*n)++] = *s++;
  out[*n] = '\0';
}

}  // namespace

int ModuleMapCallback(struct dl_phdr_info* info, size_t, void* data) {
  LoadContext* ctx = static_cast<LoadContext*>(data);
  ModuleMap* map = ctx->map;
  if (map->n_ == ModuleMap::kMaxModules) return 1;
  ModuleMap::Module& m = map->modules_[map->n_];
  m = ModuleMap::Module{};
  m.bias = info->dlpi_addr;
  bool any = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    if (!any || lo < m.lo) m.lo = lo;
    if (!any || hi > m.hi) m.hi = hi;
    any = true;
  }
  if (!any) return 0;
  const char* name = info->dlpi_name;
  if (name == nullptr || name[0] == '\0') {
    // The main program's link map has no name (the first entry listed).
    m.is_exe = map->n_ == 0;
    name = m.is_exe && ctx->exe_path != nullptr ? ctx->exe_path : "";
  }
  CopyString(m.path, sizeof m.path, name);
  ReadBuildId(info, m.build_id);
  ++map->n_;
  return 0;
}

void ModuleMap::Load(const char* exe_path) {
  n_ = 0;
  LoadContext ctx{this, exe_path};
  LIBC(dl_iterate_phdr)(ModuleMapCallback, &ctx);
}

const ModuleMap::Module* ModuleMap::Find(uintptr_t pc) const {
  // A return address may be one past the end of its function (a call to a
  // noreturn function): look the call instruction up.
  uintptr_t at = pc - 1;
  for (int i = 0; i < n_; ++i) {
    if (at >= modules_[i].lo && at < modules_[i].hi) return &modules_[i];
  }
  return nullptr;
}

void SymbolizeInit() {
  if (g_exe_fd.load(std::memory_order_relaxed) >= 0) return;
  long fd = RawSyscall(SYS_openat, AT_FDCWD, "/proc/self/exe",
                       O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return;
  struct stat st;
  if (RawSyscall(SYS_fstat, fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    RawSyscall(SYS_close, fd);
    return;
  }
  g_exe_dev = st.st_dev;
  g_exe_ino = st.st_ino;
  g_exe_fd.store(static_cast<int>(fd), std::memory_order_release);
}

void DescribeFrame(const ModuleMap::Module* m, uintptr_t pc, char* out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  if (m == nullptr) {
    // No raw absolute address: it would tell the address-space layout.
    AppendText(out, cap, &n, "?");
    return;
  }
  uint64_t vaddr = pc - m->bias;
  char name[256];
  uint64_t offset = 0;
  bool named = false;
  if (m->is_exe) named = ExeSymbol(vaddr - 1, name, sizeof name, &offset);
  if (!named) {
    Dl_info info;
    if (LIBC(dladdr1)(reinterpret_cast<void*>(pc - 1), &info, nullptr, 0) != 0 &&
        info.dli_sname != nullptr && info.dli_saddr != nullptr) {
      CopyString(name, sizeof name, info.dli_sname);
      offset = pc - 1 - reinterpret_cast<uintptr_t>(info.dli_saddr);
      named = true;
    }
  }
  if (named) {
    ++offset;  // of the return address itself, as everywhere else
    Demangle(name, sizeof name);
    AppendText(out, cap, &n, name);
    AppendText(out, cap, &n, "+");
    AppendHex(out, cap, &n, offset);
    AppendText(out, cap, &n, " (");
    AppendText(out, cap, &n, Basename(m->path));
    AppendText(out, cap, &n, ")");
  } else {
    AppendText(out, cap, &n, Basename(m->path));
    AppendText(out, cap, &n, "+");
    AppendHex(out, cap, &n, vaddr);
  }
}

int FirstProgramFrame(const ModuleMap& modules, const uintptr_t* pcs, int n) {
  for (int i = 0; i < n; ++i) {
    const ModuleMap::Module* m = modules.Find(pcs[i]);
    if (m != nullptr && m->is_exe) return i;
  }
  for (int i = 0; i < n; ++i) {
    const ModuleMap::Module* m = modules.Find(pcs[i]);
    if (m != nullptr && !IsRuntime(*m)) return i;
  }
  return 0;
}

}  // namespace pristine
