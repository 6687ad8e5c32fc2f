// SPDX-License-Identifier: Apache-2.0
// pristine-dlsym-cost: what one dlsym call costs, by kind of lookup, in this process (run it with
// and without LD_PRELOAD=libpristine.so; the library interposes dlsym and dlvsym, see
// shim/dlsym.cc). No dependency on the library.
//
//   pristine-dlsym-cost [--batches B] [--calls N]
//
// Each kind is timed in B batches of N calls; one JSON object on stdout with the median batch's
// time per call, in nanoseconds:
//   default            dlsym(RTLD_DEFAULT, "printf")
//   next               dlsym(RTLD_NEXT, "printf")
//   handle_other       dlsym(dlopen("libc.so.6"), "printf"): a name the library does not export
//   handle_interposed  dlsym(dlopen("libc.so.6"), "unshare"): answered with the library's
//   handle_missing     dlsym(dlopen("libc.so.6"), "no_such_function"): glibc's error path
//   dlvsym_interposed  dlvsym(dlopen("libc.so.6"), "pthread_create", "GLIBC_2.34")
#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../testapps/json_out.h"

namespace {

double NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

volatile void* g_sink;

template <typename F>
double PerCall(int batches, int calls, F f) {
  std::vector<double> v;
  for (int b = 0; b < batches; ++b) {
    double t0 = NowNs();
    for (int i = 0; i < calls; ++i) g_sink = f();
    v.push_back((NowNs() - t0) / calls);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int batches = 21, calls = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--batches") == 0) batches = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--calls") == 0) calls = std::atoi(argv[i + 1]);
    else return 2;
  }
  if (batches < 1 || calls < 1) return 2;
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libc == nullptr) return 1;
  JsonWriter w;
  w.begin_object();
  auto row = [&](const char* key, double ns) {
    w.key(key);
    w.raw(std::to_string(ns));
  };
  row("default", PerCall(batches, calls, [] { return dlsym(RTLD_DEFAULT, "printf"); }));
  row("next", PerCall(batches, calls, [] { return dlsym(RTLD_NEXT, "printf"); }));
  row("handle_other", PerCall(batches, calls, [&] { return dlsym(libc, "printf"); }));
  row("handle_interposed", PerCall(batches, calls, [&] { return dlsym(libc, "unshare"); }));
  row("handle_missing", PerCall(batches, calls, [&] { return dlsym(libc, "no_such_function"); }));
  row("dlvsym_interposed", PerCall(batches, calls, [&] {
        return dlvsym(libc, "pthread_create", "GLIBC_2.34");
      }));
  w.end_object();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
