// SPDX-License-Identifier: Apache-2.0
// dlclose_lib: dlopen()s libpristine.so at run time (argv[1]), has a worker take a private
// fs_struct and make forwarded creates through the library's own functions (so its template and
// spare threads run), dlclose()s it, then makes more creates through the same functions. The
// library must stay resident: its threads keep running its code. Prints {"ran": N} (4 expected);
// a library unmapped under its threads crashes the program.

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
using UnshareFn = int (*)(int);

CreateFn g_create;
UnshareFn g_unshare;
std::atomic<int> g_ran{0};
std::atomic<int> g_phase{0};

void* Child(void*) {
  g_ran.fetch_add(1);
  return nullptr;
}

void Create() {
  pthread_t t;
  if (g_create(&t, nullptr, Child, nullptr) != 0) std::exit(2);
  pthread_join(t, nullptr);
}

void* Worker(void*) {
  if (g_unshare(CLONE_FS) != 0 || chdir("/") != 0) std::exit(3);
  Create();
  Create();
  g_phase = 1;
  while (g_phase.load() != 2) sched_yield();
  Create();
  Create();
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  g_create = reinterpret_cast<CreateFn>(dlsym(h, "pthread_create"));
  g_unshare = reinterpret_cast<UnshareFn>(dlsym(h, "unshare"));
  if (g_create == nullptr || g_unshare == nullptr) return 2;
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) return 2;
  while (g_phase.load() != 1) sched_yield();
  dlclose(h);
  g_phase = 2;
  pthread_join(w, nullptr);
  std::printf("{\"ran\": %d}\n", g_ran.load());
  return 0;
}
