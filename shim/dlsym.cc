// SPDX-License-Identifier: Apache-2.0
// dlsym and dlvsym in front of libc's.
//
// Why: a program that looks a function up through a handle of libc itself
// (dlsym(dlopen("libc.so.6"), "unshare"), Python's ctypes.CDLL("libc.so.6").unshare,
// JNA's Native.load("c")) gets libc's definition: the handle's own scope is searched, which
// the preloaded library is not part of. Its setns/unshare/sched_setaffinity/... would go past
// the library, and every thread the caller creates afterwards would inherit the change. So a
// lookup through a real handle of a name the library exports, whose answer is libc's default
// definition of that name, answers with the library's entry point instead. Anything else (the
// program's own symbols, another library's, a compat version such as timer_create@GLIBC_2.2.5
// with another ABI, names the library does not interpose) is answered as glibc answers it.
//
// RTLD_DEFAULT and RTLD_NEXT: glibc's answer depends on the caller (RTLD_NEXT searches after
// the object the call comes from; RTLD_DEFAULT searches the caller's scope), found from the
// return address. Those calls are passed on with a jump, not a call (the assembly below), so
// the next dlsym sees the original caller and return address: an interposer preloaded after
// this library that looks up dlsym(RTLD_NEXT, "unshare") still gets libc's. They are never
// changed, and answer the library's entry points already, since it is preloaded.
//
// Finding libc's dlsym: every symbol lookup by name starts at the program and finds this
// library's dlsym first (an unversioned definition satisfies any version), so the real one
// cannot be asked for by name. It is read instead from libc's dynamic symbol table: ld.so's
// debugger interface (_r_debug, <link.h>) lists the loaded objects, the program and the
// preloaded libraries before libc; libc.so.6's GNU hash table gives its default dlsym and
// dlvsym. No function is called for that (dl_iterate_phdr,
// dladdr and friends are intercepted by sanitizer runtimes, which may be initialising when
// the first lookup arrives), nothing is allocated, nothing is opened. Then the dlsym and
// dlvsym that come after this library in lookup order are found with libc's
// dlsym(RTLD_NEXT, ...), called from here, and the RTLD_* paths jump to those, so that a
// second interposer of dlsym keeps seeing the program's lookups. The library's own lookups
// (REAL() in interpose.h, libunwind) call libc's dlsym directly and never come back here.
//
// When: at the first lookup of the process, whoever makes it (a constructor of another
// library, a sanitizer's start-up, any thread); nothing at load. Threads racing through the
// first lookup compute the same values and publish them; none waits for another, so a
// signal handler interrupting one cannot deadlock. Load-time cost: the _r_debug import
// replaces the dlsym import the library had; nothing else is bound at start.
//
// Which thread: any thread of the host, never the template (which never calls dlsym).

#include "dlsym.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>

#include <atomic>

#include "absl/base/attributes.h"

// api.cc: this copy's own pristine_rebase_v1, under a name no one interposes,
// and the exported name, which this library's references reach through its
// GOT: bound at load (-z now) to the first definition in lookup order.
extern "C" int pristine_this_copy_v1(void);
extern "C" int pristine_rebase_v1(void);

namespace pristine {
namespace {

using DlvsymFn = void* (*)(void* handle, const char* name, const char* version);

// strcmp(a, b) == 0, without importing strcmp (an import is a symbol bound at
// every process start).
bool SameString(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

// A loaded object's dynamic symbol table: enough to find a defined function's
// default version by name (GNU hash, or the SysV hash if it has none).
struct DynamicSymbols {
  uintptr_t base = 0;
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  uintptr_t strsz = 0;
  const uint32_t* gnu_hash = nullptr;
  const uint32_t* sysv_hash = nullptr;
  const ElfW(Versym)* versym = nullptr;
  const char* soname = nullptr;

  // Reads `map`'s dynamic section. ld.so relocates its addresses in place on
  // x86_64 and aarch64, but leaves them as offsets in a read-only dynamic
  // section: an address below the load base is an offset.
  bool Init(const struct link_map* map) {
    if (map == nullptr || map->l_ld == nullptr) return false;
    base = map->l_addr;
    uintptr_t soname_offset = 0;
    bool has_soname = false;
    for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
      uintptr_t p = d->d_un.d_ptr;
      if (p < base) p += base;
      switch (d->d_tag) {
        case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(p); break;
        case DT_STRTAB: strtab = reinterpret_cast<const char*>(p); break;
        case DT_STRSZ: strsz = d->d_un.d_val; break;
        case DT_GNU_HASH: gnu_hash = reinterpret_cast<const uint32_t*>(p); break;
        case DT_HASH: sysv_hash = reinterpret_cast<const uint32_t*>(p); break;
        case DT_VERSYM: versym = reinterpret_cast<const ElfW(Versym)*>(p); break;
        case DT_SONAME: soname_offset = d->d_un.d_val; has_soname = true; break;
        default: break;
      }
    }
    if (symtab == nullptr || strtab == nullptr || (gnu_hash == nullptr && sysv_hash == nullptr)) {
      return false;
    }
    if (has_soname && soname_offset < strsz) soname = strtab + soname_offset;
    return true;
  }

  // The defined function `name` in its default version (what dlsym without a
  // version finds in this object), or null. `*index` is its symbol index.
  const ElfW(Sym)* Find(const char* name, uint32_t* index) const {
    if (gnu_hash != nullptr) return FindGnu(name, index);
    return FindSysv(name, index);
  }

  void* Address(const ElfW(Sym)* sym) const {
    return reinterpret_cast<void*>(base + sym->st_value);
  }

 private:
  bool Acceptable(const char* name, uint32_t i) const {
    const ElfW(Sym)& s = symtab[i];
    if (s.st_shndx == SHN_UNDEF || s.st_value == 0) return false;
    if (ELF64_ST_TYPE(s.st_info) != STT_FUNC) return false;
    int bind = ELF64_ST_BIND(s.st_info);
    if (bind != STB_GLOBAL && bind != STB_WEAK) return false;
    if (versym != nullptr) {
      ElfW(Versym) v = versym[i];
      // 0: local; the high bit: a hidden (non-default) version.
      if ((v & 0x7fff) == 0 || (v & 0x8000) != 0) return false;
    }
    if (s.st_name >= strsz) return false;
    return SameString(name, strtab + s.st_name);
  }

  const ElfW(Sym)* FindGnu(const char* name, uint32_t* index) const {
    uint32_t h = 5381;
    for (const unsigned char* c = reinterpret_cast<const unsigned char*>(name); *c != 0; ++c) {
      h = h * 33 + *c;
    }
    const uint32_t nbuckets = gnu_hash[0];
    const uint32_t symoffset = gnu_hash[1];
    const uint32_t bloom_size = gnu_hash[2];
    const uint32_t bloom_shift = gnu_hash[3];
    if (nbuckets == 0 || bloom_size == 0) return nullptr;
    const ElfW(Addr)* bloom = reinterpret_cast<const ElfW(Addr)*>(gnu_hash + 4);
    const uint32_t* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
    const uint32_t* chain = buckets + nbuckets;
    constexpr uint32_t kBits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word = bloom[(h / kBits) % bloom_size];
    ElfW(Addr) mask =
        (ElfW(Addr){1} << (h % kBits)) | (ElfW(Addr){1} << ((h >> bloom_shift) % kBits));
    if ((word & mask) != mask) return nullptr;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset) return nullptr;
    for (;; ++i) {
      uint32_t h2 = chain[i - symoffset];
      if ((h | 1) == (h2 | 1) && Acceptable(name, i)) {
        *index = i;
        return &symtab[i];
      }
      if (h2 & 1) return nullptr;
    }
  }

  const ElfW(Sym)* FindSysv(const char* name, uint32_t* index) const {
    uint32_t h = 0;
    for (const unsigned char* c = reinterpret_cast<const unsigned char*>(name); *c != 0; ++c) {
      h = (h << 4) + *c;
      uint32_t g = h & 0xf0000000u;
      if (g != 0) h ^= g >> 24;
      h &= ~g;
    }
    const uint32_t nbucket = sysv_hash[0];
    const uint32_t nchain = sysv_hash[1];
    if (nbucket == 0) return nullptr;
    const uint32_t* bucket = sysv_hash + 2;
    const uint32_t* chain = bucket + nbucket;
    for (uint32_t i = bucket[h % nbucket], n = 0; i != STN_UNDEF && i < nchain && n < nchain;
         i = chain[i], ++n) {
      if (Acceptable(name, i)) {
        *index = i;
        return &symtab[i];
      }
    }
    return nullptr;
  }
};

// What the first lookup finds; read-only once published.
struct Objects {
  DynamicSymbols libc;
  DynamicSymbols self;
  bool have_self = false;
};

enum : int { kUnpublished, kPublishing, kPublished };
ABSL_CONST_INIT std::atomic<int> g_objects_state{kUnpublished};
// Written once, by the thread that moves the state to kPublishing.
ABSL_CONST_INIT Objects g_objects;

ABSL_CONST_INIT std::atomic<DlsymFn> g_libc_dlsym{nullptr};
ABSL_CONST_INIT std::atomic<DlvsymFn> g_libc_dlvsym{nullptr};

// libc's default definition of our exported symbol number i (its index in our
// own dynamic symbol table), looked up once: null until then, kNoDefinition if
// libc has none.
constexpr uint32_t kCachedSymbols = 256;
constexpr uintptr_t kNoDefinition = 1;
ABSL_CONST_INIT std::atomic<void*> g_libc_definition[kCachedSymbols] = {};

// Reads the list of loaded objects (pure memory reads) into `out`, up to libc.
// Everything before libc in the list was loaded at start (the program, the
// preloaded libraries, this one among them when preloaded) and is never
// unloaded, so the walk never meets an object a concurrent dlclose frees. A
// library found after libc (dlopen'ed) is not in front of libc's dlsym for
// anyone, and keeps its answers unchanged (have_self stays false).
//
// A copy of the library that another copy came before (AnotherCopyCameFirst)
// passes every lookup on unchanged, so that the first copy sees libc's
// definition and answers with its own entry point.
bool Discover(Objects* out) {
  for (const struct link_map* m = _r_debug.r_map; m != nullptr; m = m->l_next) {
    // ::_DYNAMIC (<link.h>) is this library's own dynamic section.
    if (m->l_ld == _DYNAMIC) {
      out->have_self = !AnotherCopyCameFirst() && out->self.Init(m);
      continue;
    }
    DynamicSymbols d;
    if (!d.Init(m)) continue;
    if (d.soname != nullptr && SameString(d.soname, "libc.so.6")) {
      out->libc = d;
      return true;
    }
  }
  return false;
}

// The objects, from the published copy, else discovered into `local` (and
// published if no other thread is publishing).
const Objects* GetObjects(Objects* local) {
  if (g_objects_state.load(std::memory_order_acquire) == kPublished) return &g_objects;
  if (!Discover(local)) return nullptr;
  uint32_t index;
  if (const ElfW(Sym)* s = local->libc.Find("dlsym", &index)) {
    g_libc_dlsym.store(reinterpret_cast<DlsymFn>(local->libc.Address(s)),
                       std::memory_order_release);
  }
  if (const ElfW(Sym)* s = local->libc.Find("dlvsym", &index)) {
    g_libc_dlvsym.store(reinterpret_cast<DlvsymFn>(local->libc.Address(s)),
                        std::memory_order_release);
  }
  int expected = kUnpublished;
  if (g_objects_state.compare_exchange_strong(expected, kPublishing, std::memory_order_acq_rel)) {
    g_objects = *local;
    g_objects_state.store(kPublished, std::memory_order_release);
  }
  return local;
}

// The answer for a lookup through a real handle, with the objects found: our
// entry point instead of libc's default definition of the same name, else
// glibc's answer unchanged.
void* OwnInsteadOfLibcIn(const Objects& o, void* found, const char* name) {
  if (!o.have_self) return found;
  uint32_t own_index;
  const ElfW(Sym)* own = o.self.Find(name, &own_index);  // usually stops at the bloom filter
  if (own == nullptr) return found;
  void* libc_definition = own_index < kCachedSymbols
                              ? g_libc_definition[own_index].load(std::memory_order_acquire)
                              : nullptr;
  if (libc_definition == nullptr) {
    uint32_t libc_index;
    const ElfW(Sym)* s = o.libc.Find(name, &libc_index);
    libc_definition = s != nullptr ? o.libc.Address(s) : reinterpret_cast<void*>(kNoDefinition);
    if (own_index < kCachedSymbols) {
      g_libc_definition[own_index].store(libc_definition, std::memory_order_release);
    }
  }
  return found == libc_definition ? o.self.Address(own) : found;
}

// Before the objects are published (the first lookups of the process).
__attribute__((noinline)) void* OwnInsteadOfLibcSlow(void* found, const char* name) {
  Objects local;
  const Objects* o = GetObjects(&local);
  return o != nullptr ? OwnInsteadOfLibcIn(*o, found, name) : found;
}

void* OwnInsteadOfLibc(void* found, const char* name) {
  if (found == nullptr || name == nullptr) return found;
  if (g_objects_state.load(std::memory_order_acquire) != kPublished) {
    return OwnInsteadOfLibcSlow(found, name);
  }
  return OwnInsteadOfLibcIn(g_objects, found, name);
}

}  // namespace

void* ThisCopyEntry() { return reinterpret_cast<void*>(&pristine_this_copy_v1); }

void* FirstCopyEntry() {
  void* first = reinterpret_cast<void*>(&pristine_rebase_v1);
  // The two names are one function here unless the loader bound the exported
  // one elsewhere; a compiler that takes them for two functions would fold a
  // comparison to false (clang does), so the loaded value is made opaque.
  asm volatile("" : "+r"(first));
  return first;
}

bool AnotherCopyCameFirst() { return FirstCopyEntry() != ThisCopyEntry(); }

DlsymFn LibcDlsym() {
  DlsymFn f = g_libc_dlsym.load(std::memory_order_acquire);
  if (__builtin_expect(f == nullptr, 0)) {
    Objects local;
    GetObjects(&local);
    f = g_libc_dlsym.load(std::memory_order_acquire);
  }
  return f;
}

}  // namespace pristine

using pristine::DlsymFn;
using pristine::DlvsymFn;

// The next dlsym and dlvsym in lookup order (libc's, or another interposer's):
// where the exported ones jump for RTLD_DEFAULT and RTLD_NEXT. Null until the
// first lookup binds them. Plain words read by the assembly with one load.
extern "C" {
ABSL_CONST_INIT __attribute__((visibility("hidden"))) void* pristine_next_dlsym = nullptr;
ABSL_CONST_INIT __attribute__((visibility("hidden"))) void* pristine_next_dlvsym = nullptr;

// Called by the assembly on the first lookup: binds and returns the next
// dlsym/dlvsym, or null if this process has no libc.so.6 to bind to. The
// RTLD_NEXT lookups are made from here, in this library, so they find what
// comes after it.
__attribute__((visibility("hidden"), used)) void* PristineBindNextDlsym() {
  DlsymFn libc = pristine::LibcDlsym();
  if (libc == nullptr) return nullptr;
  void* next = libc(RTLD_NEXT, "dlsym");
  if (next == nullptr) next = reinterpret_cast<void*>(libc);
  __atomic_store_n(&pristine_next_dlsym, next, __ATOMIC_RELEASE);
  return next;
}

__attribute__((visibility("hidden"), used)) void* PristineBindNextDlvsym() {
  DlsymFn libc = pristine::LibcDlsym();
  if (libc == nullptr) return nullptr;
  void* next = libc(RTLD_NEXT, "dlvsym");
  if (next == nullptr) next = reinterpret_cast<void*>(pristine::g_libc_dlvsym.load());
  __atomic_store_n(&pristine_next_dlvsym, next, __ATOMIC_RELEASE);
  return next;
}

// A lookup through a real handle (the assembly jumps here): glibc's answer,
// with our entry point for libc's definition of a name we export. Glibc uses
// the caller's address for such a lookup only to tell LD_AUDIT modules who
// bound the symbol.
__attribute__((visibility("hidden"), used)) void* PristineDlsymWithHandle(void* handle,
                                                                          const char* name) {
  static_assert(sizeof(void*) == 8, "64-bit only: the assembly compares whole registers");
  void* next = __atomic_load_n(&pristine_next_dlsym, __ATOMIC_ACQUIRE);
  if (next == nullptr) next = PristineBindNextDlsym();
  if (next == nullptr) return nullptr;
  return pristine::OwnInsteadOfLibc(reinterpret_cast<DlsymFn>(next)(handle, name), name);
}

__attribute__((visibility("hidden"), used)) void* PristineDlvsymWithHandle(void* handle,
                                                                           const char* name,
                                                                           const char* version) {
  void* next = __atomic_load_n(&pristine_next_dlvsym, __ATOMIC_ACQUIRE);
  if (next == nullptr) next = PristineBindNextDlvsym();
  if (next == nullptr) return nullptr;
  return pristine::OwnInsteadOfLibc(reinterpret_cast<DlvsymFn>(next)(handle, name, version),
                                    name);
}
}  // extern "C"

// The exported dlsym(handle, name) and dlvsym(handle, name, version). RTLD_DEFAULT (0) and
// RTLD_NEXT (-1; glibc's values on every architecture, <dlfcn.h>) jump to the next definition
// with the caller's arguments, stack and return address untouched (binding it first if needed,
// with the argument registers saved); any other handle jumps to the C++ function above. x86_64
// and aarch64, as the rest of the library.
#define PRISTINE_DL_TRAMPOLINE_X86_64(name, next, bind, with_handle) \
  ".globl " #name "\n"                                                \
  ".type " #name ", @function\n"                                      \
  ".p2align 4\n" #name ":\n"                                          \
  ".cfi_startproc\n"                                                  \
  "endbr64\n"                                                         \
  "test %rdi, %rdi\n"                                                 \
  "jz 1f\n"                                                           \
  "cmp $-1, %rdi\n"                                                   \
  "je 1f\n"                                                           \
  "jmp " #with_handle "\n"                                            \
  "1:\n"                                                              \
  "mov " #next "(%rip), %rax\n"                                       \
  "test %rax, %rax\n"                                                 \
  "jz 2f\n"                                                           \
  "jmp *%rax\n"                                                       \
  "2:\n"                                                              \
  "push %rdi\n"                                                       \
  ".cfi_adjust_cfa_offset 8\n"                                        \
  "push %rsi\n"                                                       \
  ".cfi_adjust_cfa_offset 8\n"                                        \
  "push %rdx\n"                                                       \
  ".cfi_adjust_cfa_offset 8\n"                                        \
  "call " #bind "\n"                                                  \
  "pop %rdx\n"                                                        \
  ".cfi_adjust_cfa_offset -8\n"                                       \
  "pop %rsi\n"                                                        \
  ".cfi_adjust_cfa_offset -8\n"                                       \
  "pop %rdi\n"                                                        \
  ".cfi_adjust_cfa_offset -8\n"                                       \
  "test %rax, %rax\n"                                                 \
  "jz 3f\n"                                                           \
  "jmp *%rax\n"                                                       \
  "3:\n"                                                              \
  "ret\n"                                                             \
  ".cfi_endproc\n"                                                    \
  ".size " #name ", .-" #name "\n"

// x16 carries the target: BTI lets an indirect branch through x16/x17 land on
// a "bti c" (libc's functions); the link register is never touched on the
// jump paths, so pointer authentication is unaffected.
#define PRISTINE_DL_TRAMPOLINE_AARCH64(name, next, bind, with_handle) \
  ".globl " #name "\n"                                                 \
  ".type " #name ", %function\n"                                       \
  ".p2align 4\n" #name ":\n"                                           \
  ".cfi_startproc\n"                                                   \
  "hint #34\n" /* bti c */                                             \
  "cbz x0, 1f\n"                                                       \
  "cmn x0, #1\n"                                                       \
  "b.eq 1f\n"                                                          \
  "b " #with_handle "\n"                                               \
  "1:\n"                                                               \
  "adrp x16, " #next "\n"                                              \
  "ldr x16, [x16, :lo12:" #next "]\n"                                  \
  "cbz x16, 2f\n"                                                      \
  "br x16\n"                                                           \
  "2:\n"                                                               \
  "stp x29, x30, [sp, #-48]!\n"                                        \
  ".cfi_def_cfa_offset 48\n"                                           \
  ".cfi_offset 29, -48\n"                                              \
  ".cfi_offset 30, -40\n"                                              \
  "mov x29, sp\n"                                                      \
  "stp x0, x1, [sp, #16]\n"                                            \
  "str x2, [sp, #32]\n"                                                \
  "bl " #bind "\n"                                                     \
  "mov x16, x0\n"                                                      \
  "ldp x0, x1, [sp, #16]\n"                                            \
  "ldr x2, [sp, #32]\n"                                                \
  "ldp x29, x30, [sp], #48\n"                                          \
  ".cfi_restore 29\n"                                                  \
  ".cfi_restore 30\n"                                                  \
  ".cfi_def_cfa_offset 0\n"                                            \
  "cbz x16, 3f\n"                                                      \
  "br x16\n"                                                           \
  "3:\n"                                                               \
  "mov x0, #0\n"                                                       \
  "ret\n"                                                              \
  ".cfi_endproc\n"                                                     \
  ".size " #name ", .-" #name "\n"

#if defined(__x86_64__)
#define PRISTINE_DL_TRAMPOLINE PRISTINE_DL_TRAMPOLINE_X86_64
#elif defined(__aarch64__)
#define PRISTINE_DL_TRAMPOLINE PRISTINE_DL_TRAMPOLINE_AARCH64
#else
#error "pristine supports x86_64 and aarch64 only"
#endif

__asm__(".text\n"
        PRISTINE_DL_TRAMPOLINE(dlsym, pristine_next_dlsym, PristineBindNextDlsym,
                               PristineDlsymWithHandle)
        PRISTINE_DL_TRAMPOLINE(dlvsym, pristine_next_dlvsym, PristineBindNextDlvsym,
                               PristineDlvsymWithHandle));
