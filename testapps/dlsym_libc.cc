// SPDX-License-Identifier: Apache-2.0
// dlsym_libc: changes made through functions looked up in a handle of libc itself (issue 11 item
// 5), as Python's ctypes.CDLL("libc.so.6") and JNA's Native.load("c") do. Such a lookup searches
// the handle's own scope, which a preloaded library is not part of.
//
//   dlsym_libc --change unshare|setns|syscall|sched_setaffinity|dlvsym_unshare|pthread_create
//              [--handle libc|libpthread|default]
//
// A worker thread makes the change through the function found with dlsym(HANDLE, NAME) (dlvsym
// with its version for dlvsym_unshare; HANDLE: dlopen("libc.so.6"), dlopen("libpthread.so.0"),
// or RTLD_DEFAULT), then creates a child with pthread_create; the child reads its own state.
//   unshare, dlvsym_unshare  unshare(CLONE_NEWNET)
//   setns                    setns() into a network namespace made beforehand by a helper thread
//   syscall                  syscall(SYS_unshare, CLONE_NEWNET)
//   sched_setaffinity        sched_setaffinity(0) to one CPU (exit 3 with fewer than 2 CPUs)
//   pthread_create           the worker unshares its net namespace with the linked unshare, and
//                            creates the child with the pthread_create found through the handle
// It also reports which module answers a few lookups ("lookups": name -> file name of the
// module, or null): through the handle, RTLD_DEFAULT, RTLD_NEXT (from this program), libc's compat
// versions with another ABI (which must stay libc's), this program's own exported function, a
// missing name; and, when libnext_interposer.so is preloaded too, what that library's
// dlsym(RTLD_NEXT, "unshare") found and how often its unshare ran.
//
// One JSON object on stdout: {"baseline_net", "caller_net", "child_net", "baseline_cpus",
// "caller_cpus", "child_cpus", "lookups", "interposer_next", "interposer_calls"}; exit 0, 2 usage,
// 3 unsupported here.

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>

#include "issue3_util.h"

// Looked up through dlopen(NULL) by this program itself (CMake ENABLE_EXPORTS).
extern "C" __attribute__((visibility("default"), noinline)) int dlsym_libc_own_function(int x) {
  return x + 1;
}

namespace {

std::string g_change;
void* g_handle = nullptr;
int g_netns_fd = -1;

int CpuCount() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

struct ChildOut {
  long long net = -1;
  int cpus = -1;
};

void* Child(void* p) {
  auto* out = static_cast<ChildOut*>(p);
  out->net = t3::NsInode("net");
  out->cpus = CpuCount();
  return nullptr;
}

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? e : "no dlerror";
}

void* Lookup(const char* name) {
  void* f = dlsym(g_handle, name);
  if (f == nullptr) t3::Die(std::string("dlsym ") + name + ": " + DlError());
  return f;
}

// unshare's version: GLIBC_2.4 on x86_64, the first one (GLIBC_2.17) on aarch64.
const char* const kUnshareVersions[] = {"GLIBC_2.4", "GLIBC_2.17"};

struct WorkerOut {
  long long caller_net = -1;
  int caller_cpus = -1;
  ChildOut child;
};

void* Worker(void* p) {
  auto* out = static_cast<WorkerOut*>(p);
  using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  CreateFn create = pthread_create;
  int rc = 0;
  if (g_change == "unshare") {
    rc = reinterpret_cast<int (*)(int)>(Lookup("unshare"))(CLONE_NEWNET);
  } else if (g_change == "dlvsym_unshare") {
    void* f = nullptr;
    for (const char* v : kUnshareVersions) {
      if (f == nullptr) f = dlvsym(g_handle, "unshare", v);
    }
    if (f == nullptr) t3::Die("dlvsym unshare: " + DlError());
    rc = reinterpret_cast<int (*)(int)>(f)(CLONE_NEWNET);
  } else if (g_change == "setns") {
    rc = reinterpret_cast<int (*)(int, int)>(Lookup("setns"))(g_netns_fd, CLONE_NEWNET);
  } else if (g_change == "syscall") {
    rc = static_cast<int>(reinterpret_cast<long (*)(long, ...)>(Lookup("syscall"))(
        SYS_unshare, static_cast<long>(CLONE_NEWNET)));
  } else if (g_change == "sched_setaffinity") {
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; ++c) {
      if (CPU_ISSET(c, &set)) first = c;
    }
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    rc = reinterpret_cast<int (*)(pid_t, size_t, const cpu_set_t*)>(Lookup("sched_setaffinity"))(
        0, sizeof set, &set);
  } else if (g_change == "pthread_create") {
    rc = unshare(CLONE_NEWNET);
    create = reinterpret_cast<CreateFn>(Lookup("pthread_create"));
  }
  if (rc != 0) t3::Unsupported(g_change + ": " + t3::ErrName(errno));
  out->caller_net = t3::NsInode("net");
  out->caller_cpus = CpuCount();
  pthread_t th;
  int r = create(&th, nullptr, Child, &out->child);
  if (r != 0) t3::Die("pthread_create: " + t3::ErrName(r));
  pthread_join(th, nullptr);
  return nullptr;
}

// A network namespace other than the baseline's, for setns: made by a helper thread, which
// exits (its descriptor keeps the namespace).
void* MakeNetns(void*) {
  if (unshare(CLONE_NEWNET) != 0) t3::Unsupported("unshare(CLONE_NEWNET): " + t3::ErrName(errno));
  g_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return nullptr;
}

// The file name (without directories) of the module `p` lies in, or "" for null.
std::string Module(void* p) {
  if (p == nullptr) return "";
  Dl_info info;
  if (dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "?";
  const char* slash = std::strrchr(info.dli_fname, '/');
  std::string name = slash != nullptr ? slash + 1 : info.dli_fname;
  // The main program's name comes out empty or as its path.
  return name.empty() || name == "dlsym_libc" ? "main" : name;
}

void WriteLookups(JsonWriter& w) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* self = dlopen(nullptr, RTLD_NOW);
  auto entry = [&](const char* key, void* p) {
    w.key(key);
    if (p == nullptr) w.null(); else w.value(Module(p));
  };
  w.begin_object();
  for (const char* n : {"unshare", "setns", "syscall", "sched_setaffinity", "pthread_create",
                        "timer_create", "dlsym", "dlvsym", "printf"}) {
    entry((std::string("libc:") + n).c_str(), dlsym(libc, n));
  }
  void* versioned = nullptr;
  for (const char* v : kUnshareVersions) {
    if (versioned == nullptr) versioned = dlvsym(libc, "unshare", v);
  }
  entry("libc:unshare@version", versioned);
  // Compat versions with another ABI (two arguments; an int timer id).
  entry("libc:sched_setaffinity@GLIBC_2.3.3", dlvsym(libc, "sched_setaffinity", "GLIBC_2.3.3"));
  entry("libc:timer_create@GLIBC_2.2.5", dlvsym(libc, "timer_create", "GLIBC_2.2.5"));
  entry("default:unshare", dlsym(RTLD_DEFAULT, "unshare"));
  entry("next:unshare", dlsym(RTLD_NEXT, "unshare"));
  entry("self:unshare", dlsym(self, "unshare"));
  void* own = dlsym(self, "dlsym_libc_own_function");
  entry("self:own_function", own);
  w.key("self:own_function_is_it");
  w.value(own == reinterpret_cast<void*>(&dlsym_libc_own_function));
  dlerror();
  void* missing = dlsym(libc, "pristine_no_such_function");
  const char* err = dlerror();
  entry("libc:missing", missing);
  w.key("libc:missing_dlerror");
  w.value(err != nullptr);
  w.end_object();
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: dlsym_libc --change unshare|setns|syscall|sched_setaffinity|"
               "dlvsym_unshare|pthread_create [--handle libc|libpthread|default]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string handle = "libc";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--change") g_change = v;
    else if (a == "--handle") handle = v;
    else Usage();
  }
  if (argc % 2 != 1) Usage();
  static const char* const kChanges[] = {"unshare", "setns", "syscall", "sched_setaffinity",
                                          "dlvsym_unshare", "pthread_create"};
  bool known = false;
  for (const char* c : kChanges) known = known || g_change == c;
  if (!known) Usage();
  if (handle == "libc") g_handle = dlopen("libc.so.6", RTLD_NOW | RTLD_LOCAL);
  else if (handle == "libpthread") g_handle = dlopen("libpthread.so.0", RTLD_NOW | RTLD_LOCAL);
  else if (handle == "default") g_handle = RTLD_DEFAULT;
  else Usage();
  if (handle != "default" && g_handle == nullptr) t3::Die("dlopen: " + DlError());
  if (g_change == "sched_setaffinity" && CpuCount() < 2) t3::Unsupported("fewer than 2 CPUs");

  long long baseline_net = t3::NsInode("net");
  int baseline_cpus = CpuCount();
  pthread_t th;
  if (g_change == "setns") {
    if (pthread_create(&th, nullptr, MakeNetns, nullptr) != 0) t3::Die("helper thread");
    pthread_join(th, nullptr);
    if (g_netns_fd < 0) t3::Die("open /proc/thread-self/ns/net: " + t3::ErrName(errno));
  }
  WorkerOut out;
  int r = pthread_create(&th, nullptr, Worker, &out);
  if (r != 0) t3::Die("worker: " + t3::ErrName(r));
  pthread_join(th, nullptr);

  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(baseline_net);
  w.key("caller_net"); w.value(out.caller_net);
  w.key("child_net"); w.value(out.child.net);
  w.key("baseline_cpus"); w.value(baseline_cpus);
  w.key("caller_cpus"); w.value(out.caller_cpus);
  w.key("child_cpus"); w.value(out.child.cpus);
  w.key("lookups");
  WriteLookups(w);
  // libnext_interposer.so, when preloaded.
  auto next_module = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "next_interposer_next"));
  auto calls = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "next_interposer_calls"));
  w.key("interposer_next");
  if (next_module == nullptr) w.null(); else w.value(Module(next_module()));
  w.key("interposer_calls");
  if (calls == nullptr) w.null(); else w.value(calls());
  w.end_object();
  t3::PrintJson(w);
  return 0;
}
