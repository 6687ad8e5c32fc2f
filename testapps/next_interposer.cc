// SPDX-License-Identifier: Apache-2.0
// libnext_interposer.so: a second preloaded interposer of unshare, as other tools are, which
// finds the definition after itself with dlsym(RTLD_NEXT, "unshare") (issue 11 item 5). Preloaded
// after libpristine.so it must get libc's; before it, libpristine's; never its own (which would
// recurse). dlsym_libc reports what it found (next_interposer_next) and how often its unshare
// ran (next_interposer_calls).
#include <dlfcn.h>
#include <sched.h>

#include <atomic>

namespace {
std::atomic<void*> g_next{nullptr};
std::atomic<int> g_calls{0};

void* Next() {
  void* f = g_next.load();
  if (f == nullptr) {
    f = dlsym(RTLD_NEXT, "unshare");
    g_next.store(f);
  }
  return f;
}
}  // namespace

extern "C" __attribute__((visibility("default"))) int unshare(int flags) {
  g_calls.fetch_add(1);
  auto next = reinterpret_cast<int (*)(int)>(Next());
  // Its own definition would recurse for ever: fail loudly instead.
  if (next == nullptr || next == reinterpret_cast<void*>(&unshare)) __builtin_trap();
  return next(flags);
}

extern "C" __attribute__((visibility("default"))) void* next_interposer_next() { return Next(); }

extern "C" __attribute__((visibility("default"))) int next_interposer_calls() {
  return g_calls.load();
}
