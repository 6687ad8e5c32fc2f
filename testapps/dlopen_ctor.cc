// SPDX-License-Identifier: Apache-2.0
// dlopen_ctor: a thread dlopen()s libctor_lib.so, whose constructor creates and joins a thread
// The opening thread first unshares its net namespace unless --untainted.
//
//   dlopen_ctor [--untainted] [--from main|worker] [LIBRARY]
//     LIBRARY defaults to libctor_lib.so next to this executable.
//
// One JSON object on stdout: {"baseline_net", "opener_net", "dlopen_error": null|"...",
// "ctor_caller_net", "ctor_thread_net", "ctor_create_rc", "ctor_join_rc"}; exit 0, 2 usage,
// 3 unsupported here.

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>

#include "thread_state.h"

namespace {

bool g_tainted = true;
std::string g_lib;

struct Result {
  long long opener_net = -1;
  std::string error;
  long long caller_net = -2, thread_net = -2;
  int create_rc = -2, join_rc = -2;
};

void OpenLib(Result* r) {
  if (g_tainted && unshare(CLONE_NEWNET) != 0) testapp::CannotRunHere("unshare(CLONE_NEWNET): " + testapp::ErrName(errno));
  r->opener_net = testapp::NsInode("net");
  void* h = dlopen(g_lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = dlerror();
    r->error = e != nullptr ? e : "dlopen failed";
    return;
  }
  auto ll = [&](const char* n) { auto* p = static_cast<long long*>(dlsym(h, n)); return p ? *p : -3; };
  auto in = [&](const char* n) { auto* p = static_cast<int*>(dlsym(h, n)); return p ? *p : -3; };
  r->caller_net = ll("ctor_lib_caller_net");
  r->thread_net = ll("ctor_lib_thread_net");
  r->create_rc = in("ctor_lib_create_rc");
  r->join_rc = in("ctor_lib_join_rc");
}

}  // namespace

int main(int argc, char** argv) {
  bool from_worker = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--untainted") {
      g_tainted = false;
    } else if (a == "--from" && i + 1 < argc) {
      std::string v = argv[++i];
      if (v != "main" && v != "worker") return 2;
      from_worker = v == "worker";
    } else if (!a.empty() && a[0] != '-') {
      g_lib = a;
    } else {
      std::fprintf(stderr, "usage: dlopen_ctor [--untainted] [--from main|worker] [LIBRARY]\n");
      return 2;
    }
  }
  if (g_lib.empty()) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) testapp::Die("readlink /proc/self/exe");
    exe[n] = '\0';
    g_lib = std::string(dirname(exe)) + "/libctor_lib.so";
  }
  long long baseline = testapp::NsInode("net");
  Result r;
  if (from_worker) {
    pthread_t th;
    int rc = pthread_create(&th, nullptr, [](void* p) -> void* { OpenLib(static_cast<Result*>(p)); return nullptr; }, &r);
    if (rc != 0) testapp::Die("worker: " + testapp::ErrName(rc));
    pthread_join(th, nullptr);
  } else {
    OpenLib(&r);
  }
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(baseline);
  w.key("opener_net"); w.value(r.opener_net);
  w.key("dlopen_error");
  if (r.error.empty()) w.null(); else w.value(r.error);
  w.key("ctor_caller_net"); w.value(r.caller_net);
  w.key("ctor_thread_net"); w.value(r.thread_net);
  w.key("ctor_create_rc"); w.value(r.create_rc);
  w.key("ctor_join_rc"); w.value(r.join_rc);
  w.end_object();
  testapp::PrintJson(w);
  return 0;
}
