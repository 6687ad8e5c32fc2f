// SPDX-License-Identifier: Apache-2.0
#include "interpose.h"

#include <dlfcn.h>

#include "absl/base/attributes.h"
#include "dlsym.h"

namespace pristine {
namespace interpose_internal {

ABSL_CONST_INIT RealFunctions g_real;

// Runs on an ordinary thread or in a half-initialised process (a constructor).
// Two threads resolving the same name at once store the same pointer. libc's
// dlsym, called from here: RTLD_NEXT means after this library, and the
// exported dlsym (dlsym.cc) is never involved.
void* Resolve(const char* name) {
  DlsymFn libc_dlsym = LibcDlsym();
  return libc_dlsym != nullptr ? libc_dlsym(RTLD_NEXT, name) : nullptr;
}

__thread bool t_library_create __attribute__((tls_model("initial-exec"))) = false;

}  // namespace interpose_internal

namespace {

using CreateFn = real_type::pthread_create;
using JoinFn = real_type::pthread_join;

// Written once by ResolveThreadMaking (on an ordinary thread, before the
// library's first thread), read by any thread after.
// (void*: the function types carry attributes a template argument drops.)
ABSL_CONST_INIT std::atomic<void*> g_first_create{nullptr};
ABSL_CONST_INIT std::atomic<void*> g_first_join{nullptr};
ABSL_CONST_INIT std::atomic<bool> g_interposer_ahead{false};
ABSL_CONST_INIT std::atomic<bool> g_tsan_loaded{false};
ABSL_CONST_INIT std::atomic<TsanSyncFn> g_tsan_acquire{nullptr};
ABSL_CONST_INIT std::atomic<TsanSyncFn> g_tsan_release{nullptr};

// Whether `f` is defined in this library (the module holding this function).
bool DefinedHere(void* f) {
  Dl_info mine, theirs;
  void* extra = nullptr;
  if (LIBC(dladdr1)(reinterpret_cast<void*>(&DefinedHere), &mine, &extra, 0) == 0 ||
      LIBC(dladdr1)(f, &theirs, &extra, 0) == 0) {
    return false;
  }
  return mine.dli_fbase == theirs.dli_fbase;
}

}  // namespace

void ResolveThreadMaking() {
  if (g_first_create.load(std::memory_order_acquire) != nullptr) return;
  CreateFn real = REAL(pthread_create);
  JoinFn real_join = LIBC(pthread_join);
  DlsymFn libc_dlsym = LibcDlsym();
  auto dlsym = [&](void* handle, const char* name) {
    return libc_dlsym != nullptr ? libc_dlsym(handle, name) : nullptr;
  };
  void* first = dlsym(RTLD_DEFAULT, "pthread_create");
  bool ahead = first != nullptr && !DefinedHere(first);
  void* first_join = dlsym(RTLD_DEFAULT, "pthread_join");
  // TSan's entry points are in its runtime whatever the order; its
  // annotations are used only when the library is ahead of it: then the
  // threads that run them (spares, threads the template made) went through
  // TSan's pthread_create. Behind it, TSan orders the creates itself.
  bool tsan = dlsym(RTLD_DEFAULT, "__tsan_init") != nullptr;
  g_tsan_loaded.store(tsan, std::memory_order_relaxed);
  if (tsan && !ahead) {
    g_tsan_acquire.store(reinterpret_cast<TsanSyncFn>(dlsym(RTLD_DEFAULT, "__tsan_acquire")),
                         std::memory_order_relaxed);
    g_tsan_release.store(reinterpret_cast<TsanSyncFn>(dlsym(RTLD_DEFAULT, "__tsan_release")),
                         std::memory_order_relaxed);
  }
  g_interposer_ahead.store(ahead, std::memory_order_relaxed);
  g_first_join.store(first_join != nullptr ? first_join : reinterpret_cast<void*>(real_join),
                     std::memory_order_relaxed);
  g_first_create.store(ahead ? first : reinterpret_cast<void*>(real), std::memory_order_release);
}

bool InterposerAhead() { return g_interposer_ahead.load(std::memory_order_relaxed); }

int CreateLibraryThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                        void* arg) {
  auto create = reinterpret_cast<CreateFn>(g_first_create.load(std::memory_order_acquire));
  if (create == nullptr) create = REAL(pthread_create);
  bool outer = !interpose_internal::t_library_create;
  interpose_internal::t_library_create = true;
  int rc = create(thread, attr, start, arg);
  if (outer) interpose_internal::t_library_create = false;
  return rc;
}

int JoinLibraryThread(pthread_t thread, void** result) {
  auto join = reinterpret_cast<JoinFn>(g_first_join.load(std::memory_order_acquire));
  if (join == nullptr) join = LIBC(pthread_join);
  return join(thread, result);
}

TsanSyncFn TsanAcquire() { return g_tsan_acquire.load(std::memory_order_relaxed); }
TsanSyncFn TsanRelease() { return g_tsan_release.load(std::memory_order_relaxed); }
bool TsanLoaded() { return g_tsan_loaded.load(std::memory_order_relaxed); }

}  // namespace pristine
