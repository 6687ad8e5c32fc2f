// SPDX-License-Identifier: Apache-2.0
// allocator_threads: an allocator that starts its own threads while holding its own locks, called
// from a tainted thread (pytests/test_contexts.py). Run with jemalloc (or tcmalloc) preloaded, with
// and without libpristine.so, in either order.
//
//   allocator_threads TAINT MODE
// TAINT: net (the worker enters a new network namespace: a create the caller makes itself),
//        fs (the worker takes a private cwd: a create a thread in the baseline makes), none.
// MODE:  mallctl   the tainted worker enables jemalloc's background threads with
//                  mallctl("background_thread", true): jemalloc creates the first one from the
//                  worker, holding its background_thread_lock (and ctl_mtx)
//        toggle    the same after switching them off (for MALLOC_CONF=background_thread:true,
//                  where jemalloc starts them at initialisation, from the main thread)
//        plain     no allocator call: the worker creates 20 threads that allocate and free
//                  (for an allocator without background threads: tcmalloc)
//
// Output: one JSON object: bg_threads (threads named jemalloc_bg_thd once enabling returned and
// the threads are running), bg_wrong_net / bg_wrong_fs (how many of them are not in the baseline's
// network namespace / do not share the main thread's fs_struct, by kcmp), and for the worker's own
// create after the allocator call (and every create in `plain`): child_wrong_net, child_wrong_fs.
// Exit: 0 done, 1 error, 3 this machine cannot set it up (no jemalloc loaded, unshare refused).
// A hang is the failure this program exists to catch: the caller of pthread_create inside
// jemalloc holds its locks; the test's timeout turns a hang into a failure.

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);

pid_t g_main_tid;
ino_t g_base_net;
const char* g_taint;
const char* g_mode;

int Gettid() { return static_cast<int>(syscall(SYS_gettid)); }

ino_t NetOf(int tid) {
  struct stat st;
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/ns/net";
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Whether thread `tid` shares the main thread's fs_struct (cwd, root, umask).
bool SharesMainFs(int tid) {
  return syscall(SYS_kcmp, g_main_tid, tid, KCMP_FS, 0, 0) == 0;
}

[[noreturn]] void Unsupported(const char* what) {
  std::fprintf(stderr, "allocator_threads: cannot run here: %s: %s\n", what, strerror(errno));
  _exit(3);
}

// The tids of threads named `name`.
std::vector<int> ThreadsNamed(const char* name) {
  std::vector<int> out;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = "";
    std::snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = '\0';
    if (std::strcmp(comm, name) == 0) out.push_back(std::atoi(e->d_name));
  }
  closedir(d);
  return out;
}

struct ChildResult {
  int wrong_net = 0;
  int wrong_fs = 0;
};

void* Child(void* arg) {
  // Allocates and frees on the new thread: its allocator state is set up here.
  void* p = std::malloc(100);
  std::free(p);
  auto* r = static_cast<ChildResult*>(arg);
  if (NetOf(Gettid()) != g_base_net) ++r->wrong_net;
  if (!SharesMainFs(Gettid())) ++r->wrong_fs;
  return nullptr;
}

struct Outcome {
  int bg = 0, bg_wrong_net = 0, bg_wrong_fs = 0;
  ChildResult child;
  int creates = 0;
  int create_errors = 0;
};

void CreateChildren(int n, Outcome* out) {
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    int rc = pthread_create(&t, nullptr, Child, &out->child);
    if (rc != 0) {
      ++out->create_errors;
      continue;
    }
    pthread_join(t, nullptr);
    ++out->creates;
  }
}

void* Worker(void* arg) {
  auto* out = static_cast<Outcome*>(arg);
  if (std::strcmp(g_taint, "net") == 0) {
    if (unshare(CLONE_NEWNET) != 0) Unsupported("unshare(CLONE_NEWNET)");
  } else if (std::strcmp(g_taint, "fs") == 0) {
    if (unshare(CLONE_FS) != 0) Unsupported("unshare(CLONE_FS)");
    if (chdir("/") != 0) Unsupported("chdir");
  }
  if (std::strcmp(g_mode, "plain") == 0) {
    CreateChildren(20, out);
    return nullptr;
  }
  auto mallctl = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) {
    errno = ENOENT;
    Unsupported("jemalloc is not loaded (no mallctl)");
  }
  bool on = true, off = false;
  if (std::strcmp(g_mode, "toggle") == 0 &&
      mallctl("background_thread", nullptr, nullptr, &off, sizeof off) != 0) {
    std::fprintf(stderr, "allocator_threads: mallctl(background_thread, false) failed\n");
    _exit(1);
  }
  // jemalloc creates its first background thread here, from this (tainted) thread, with its
  // background_thread_lock held.
  if (mallctl("background_thread", nullptr, nullptr, &on, sizeof on) != 0) {
    std::fprintf(stderr, "allocator_threads: mallctl(background_thread, true) failed\n");
    _exit(1);
  }
  // The worker's own create afterwards, and allocations from several threads so that jemalloc
  // has more than one arena (its first background thread starts the others on demand).
  CreateChildren(4, out);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: allocator_threads net|fs|none mallctl|toggle|plain\n");
    return 2;
  }
  g_taint = argv[1];
  g_mode = argv[2];
  g_main_tid = Gettid();
  g_base_net = NetOf(g_main_tid);
  Outcome out;
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, &out) != 0) {
    std::fprintf(stderr, "allocator_threads: cannot start the worker\n");
    return 1;
  }
  pthread_join(w, nullptr);
  if (std::strcmp(g_mode, "plain") != 0) {
    // Enabling returned; a background thread names itself when it starts running. Wait for the
    // first one to have run (a bounded wait for a state, not a measurement).
    std::vector<int> bg;
    for (int i = 0; i < 2000 && bg.empty(); ++i) {
      bg = ThreadsNamed("jemalloc_bg_thd");
      if (bg.empty()) usleep(1000);
    }
    out.bg = static_cast<int>(bg.size());
    for (int tid : bg) {
      if (NetOf(tid) != g_base_net) ++out.bg_wrong_net;
      if (!SharesMainFs(tid)) ++out.bg_wrong_fs;
    }
  }
  std::printf(
      "{\"bg_threads\": %d, \"bg_wrong_net\": %d, \"bg_wrong_fs\": %d, \"creates\": %d, "
      "\"create_errors\": %d, \"child_wrong_net\": %d, \"child_wrong_fs\": %d}\n",
      out.bg, out.bg_wrong_net, out.bg_wrong_fs, out.creates, out.create_errors,
      out.child.wrong_net, out.child.wrong_fs);
  return 0;
}
