// SPDX-License-Identifier: Apache-2.0
// inherit_private_fds: an inherited namespace on a caller with a private fd table (issue 12
// item 5). Run with PRISTINE_OPTIONS=net=inherit (and/or uts=inherit).
//
//   inherit_private_fds [--ns net|uts] [--also-fs] [--attr]
//
// A worker makes its fd table private (unshare(CLONE_FILES): an isolated taint, so its creates
// are forwarded), optionally its fs too (--also-fs), then enters a new namespace of the
// inherited kind (unshare(CLONE_NEWNET) or CLONE_NEWUTS). The main thread, in the baseline's fd
// table, then opens a descriptor of its own (a fresh regular file under /tmp, unlinked): it gets
// the lowest free number, the same number that the next descriptor opened in the worker's
// private table gets. The worker then creates a thread (default attributes, or with an explicit
// stack size with --attr), which reports its namespace. Without the fix the library opened the
// caller's namespace descriptor in the caller's table, and the new thread, in the baseline's
// table, used and closed that number there: the main thread's file.
// One JSON object: {"baseline_ns", "caller_ns", "child_ns": inode, "create_rc",
//   "main_fd": N, "main_fd_same_file": true|false, "main_fd_errno": "0"|"EBADF"}
// Exit 0, 2 usage, 3 cannot apply the set-up.
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/stat.h>

#include "regress_util.h"

namespace {

std::string g_ns = "net";
bool g_also_fs = false;
bool g_attr = false;
sem_t g_tainted, g_opened;
long long g_caller_ns = -1, g_child_ns = -1;
int g_create_rc = -1;

void* Child(void*) {
  g_child_ns = t3::NsInode(g_ns.c_str());
  return nullptr;
}

void* Worker(void*) {
  if (unshare(CLONE_FILES) != 0) t3::Unsupported("unshare(CLONE_FILES)");
  if (g_also_fs && unshare(CLONE_FS) != 0) t3::Unsupported("unshare(CLONE_FS)");
  if (unshare(g_ns == "net" ? CLONE_NEWNET : CLONE_NEWUTS) != 0) t3::Unsupported("unshare(ns)");
  g_caller_ns = t3::NsInode(g_ns.c_str());
  sem_post(&g_tainted);
  while (sem_wait(&g_opened) != 0) {
  }
  pthread_t t;
  if (g_attr) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 1 << 20);
    g_create_rc = pthread_create(&t, &a, Child, nullptr);
    pthread_attr_destroy(&a);
  } else {
    g_create_rc = pthread_create(&t, nullptr, Child, nullptr);
  }
  if (g_create_rc == 0) pthread_join(t, nullptr);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--ns" && i + 1 < argc) g_ns = argv[++i];
    else if (a == "--also-fs") g_also_fs = true;
    else if (a == "--attr") g_attr = true;
    else {
      std::fprintf(stderr, "usage: inherit_private_fds [--ns net|uts] [--also-fs] [--attr]\n");
      return 2;
    }
  }
  if (g_ns != "net" && g_ns != "uts") return 2;
  sem_init(&g_tainted, 0, 0);
  sem_init(&g_opened, 0, 0);
  long long baseline_ns = t3::NsInode(g_ns.c_str());
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) t3::Die("pthread_create(worker)");
  while (sem_wait(&g_tainted) != 0) {
  }
  char path[] = "/tmp/pristine-inherit-fds-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) t3::Die("mkstemp");
  unlink(path);
  struct stat before;
  fstat(fd, &before);
  sem_post(&g_opened);
  pthread_join(w, nullptr);

  struct stat after;
  int fstat_rc = fstat(fd, &after);
  int fstat_errno = fstat_rc == 0 ? 0 : errno;
  bool same = fstat_rc == 0 && after.st_dev == before.st_dev && after.st_ino == before.st_ino;

  JsonWriter out;
  out.begin_object();
  out.key("baseline_ns"); out.value(baseline_ns);
  out.key("caller_ns"); out.value(g_caller_ns);
  out.key("child_ns"); out.value(g_child_ns);
  out.key("create_rc"); out.value(g_create_rc);
  out.key("main_fd"); out.value(fd);
  out.key("main_fd_same_file"); out.value(same);
  out.key("main_fd_errno"); out.value(t3::ErrName(fstat_errno));
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
