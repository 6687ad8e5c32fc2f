// SPDX-License-Identifier: Apache-2.0
// priv_forwarded: never escalate, without exceptions (README, "Never escalate"). Every thread that runs
// program code because of the library (a forwarded thread, a spare, glibc's own helper threads)
// has at most the privileges of the thread that asked for it.
//
//   priv_forwarded --case glibc --mech timer|mq|gai|aio --drop uid|nocaps --taint net|fs
//                  [--mq-name /NAME] [--file PATH]
//       A worker taints itself (net: unshare(CLONE_NEWNET); fs: unshare(CLONE_FS)), then drops
//       privileges through libc (uid: syscall(SYS_setresgid) and syscall(SYS_setresuid) to 65534,
//       its own thread only; nocaps: capset to empty sets and no_new_privs) and makes glibc start a thread of
//       its own with a SIGEV_THREAD notification: timer_create (a 1 ms one-shot timer), mq_notify
//       (the queue is opened before the drop; the worker sends one message), getaddrinfo_a
//       ("localhost"), aio_write (of --file, opened before the drop). The notification function
//       reports its privileges.
//   priv_forwarded --case fsuid [--file PATH]
//       A worker makes its fs private, calls setfsuid(65534) and setfsgid(65534) and creates a
//       thread, which reports its privileges and the result of opening --file (root's, 0600)
//       for reading; the worker reports its own result too.
//   priv_forwarded --case inline --drop caps|seccomp
//       A worker makes its fs private (through libc), then with system call instructions that
//       no interposer sees either drops every capability (capset) or sets no_new_privs and a
//       seccomp filter under which getppid() fails with EPERM, and creates a thread.
//   priv_forwarded --case keepcaps-dance
//       A worker makes its fs private and creates a thread with default attributes and one with
//       a stack size (the library's template and spares now run), then ends. The main thread:
//       prctl(PR_SET_KEEPCAPS, 1), setresuid(65534 x3), capset (effective = permitted),
//       setresgid(65534 x3): glibc changes every thread's ids and aborts the process if one
//       thread disagrees. Then it creates a thread. "steps" gives each call's result,
//       "tasks_before" the number of threads before the first call.
//   priv_forwarded --case raw-netns
//       A worker enters a new network namespace with a system call instruction (no interposer
//       sees it) and creates a thread, which reports its namespace.
// One JSON object: {"caller": P, "child": P|null, "child_denied": bool, "caller_open",
//   "child_open", "steps": {...}, "tasks_before", "baseline_net", "caller_net", "child_net", "error": null|"..."}
//   P as WritePrivs in thread_state.h; "child" is the new thread or the notification function's thread.
// Exit 0, 2 usage, 3 cannot apply the set-up.
#include <aio.h>
#include <mqueue.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>

#include "thread_state.h"

// glibc exports capset(2) but declares it in no header (libcap's sys/capability.h does).
extern "C" int capset(cap_user_header_t header, const cap_user_data_t data);

namespace {

std::string g_case, g_mech, g_drop, g_taint, g_mq_name, g_file;

testapp::Privs g_caller, g_child;
bool g_have_child = false;
bool g_child_denied = false;
std::string g_caller_open, g_child_open, g_error;
long long g_baseline_net = -1, g_caller_net = -1, g_child_net = -1;
std::vector<std::pair<std::string, std::string>> g_steps;
int g_tasks_before = -1;
sem_t g_done;

void RecordChild() {
  g_child = testapp::ReadPrivs();
  g_have_child = true;
  g_child_denied = testapp::InlineSyscall(SYS_getppid) == -EPERM;
  g_child_net = testapp::NsInode("net");
  if (!g_file.empty()) {
    int fd = open(g_file.c_str(), O_RDONLY | O_CLOEXEC);
    g_child_open = fd >= 0 ? "0" : testapp::ErrName(errno);
    if (fd >= 0) close(fd);
  }
}

void* ChildThread(void*) {
  RecordChild();
  return nullptr;
}

void Notify(union sigval) {
  RecordChild();
  while (sem_post(&g_done) != 0) {
  }
}

int CreateAndJoin() {
  pthread_t t;
  int rc = pthread_create(&t, nullptr, ChildThread, nullptr);
  if (rc == 0) pthread_join(t, nullptr);
  return rc;
}

void Taint(const std::string& taint) {
  if (taint == "net") {
    if (unshare(CLONE_NEWNET) != 0) testapp::CannotRunHere("unshare(CLONE_NEWNET)");
  } else if (taint == "fs") {
    if (unshare(CLONE_FS) != 0) testapp::CannotRunHere("unshare(CLONE_FS)");
  } else {
    testapp::Die("unknown taint " + taint);
  }
}

// ---- --case glibc ----

struct GlibcState {
  mqd_t mq = static_cast<mqd_t>(-1);
  int fd = -1;
  struct gaicb gai;
  struct addrinfo hints;
  struct aiocb aio;
  char buf[16] = "pristine";
};
GlibcState g_glibc;

struct sigevent ThreadEvent() {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = Notify;
  return sev;
}

// Opens what the call needs while the worker may still.
void PrepareGlibc() {
  if (g_mech == "mq") {
    struct mq_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.mq_maxmsg = 4;
    attr.mq_msgsize = 64;
    g_glibc.mq = mq_open(g_mq_name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
    if (g_glibc.mq == static_cast<mqd_t>(-1)) testapp::CannotRunHere("mq_open: " + testapp::ErrName(errno));
    mq_unlink(g_mq_name.c_str());
  } else if (g_mech == "aio") {
    g_glibc.fd = open(g_file.c_str(), O_WRONLY | O_CLOEXEC);
    if (g_glibc.fd < 0) testapp::CannotRunHere("open --file: " + testapp::ErrName(errno));
  }
}

std::string StartGlibc() {
  struct sigevent sev = ThreadEvent();
  if (g_mech == "timer") {
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) return "timer_create: " + testapp::ErrName(errno);
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 1000000;
    if (timer_settime(t, 0, &its, nullptr) != 0) return "timer_settime: " + testapp::ErrName(errno);
    return "";
  }
  if (g_mech == "mq") {
    if (mq_notify(g_glibc.mq, &sev) != 0) return "mq_notify: " + testapp::ErrName(errno);
    if (mq_send(g_glibc.mq, "pristine", 8, 0) != 0) return "mq_send: " + testapp::ErrName(errno);
    return "";
  }
  if (g_mech == "gai") {
    memset(&g_glibc.gai, 0, sizeof g_glibc.gai);
    memset(&g_glibc.hints, 0, sizeof g_glibc.hints);
    g_glibc.hints.ai_family = AF_UNSPEC;
    g_glibc.hints.ai_socktype = SOCK_STREAM;
    g_glibc.gai.ar_name = "localhost";
    g_glibc.gai.ar_request = &g_glibc.hints;
    struct gaicb* list[1] = {&g_glibc.gai};
    int r = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    return r == 0 ? "" : std::string("getaddrinfo_a: ") + gai_strerror(r);
  }
  if (g_mech == "aio") {
    memset(&g_glibc.aio, 0, sizeof g_glibc.aio);
    g_glibc.aio.aio_fildes = g_glibc.fd;
    g_glibc.aio.aio_buf = g_glibc.buf;
    g_glibc.aio.aio_nbytes = 8;
    g_glibc.aio.aio_sigevent = sev;
    return aio_write(&g_glibc.aio) == 0 ? "" : "aio_write: " + testapp::ErrName(errno);
  }
  testapp::Die("unknown --mech " + g_mech);
}

void* GlibcWorker(void*) {
  Taint(g_taint);
  PrepareGlibc();
  if (g_drop == "uid") {
    if (syscall(SYS_setresgid, 65534, 65534, 65534) != 0 ||
        syscall(SYS_setresuid, 65534, 65534, 65534) != 0) {
      testapp::CannotRunHere("setresuid");
    }
  } else if (g_drop == "nocaps") {
    if (!testapp::SetCaps(0, 0, 0, false) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      testapp::CannotRunHere("capset/no_new_privs");
    }
  } else {
    testapp::Die("unknown --drop " + g_drop);
  }
  g_caller = testapp::ReadPrivs();
  g_error = StartGlibc();
  if (g_error.empty()) {
    while (sem_wait(&g_done) != 0) {
    }
  }
  return nullptr;
}

// ---- --case fsuid ----

void* FsuidWorker(void*) {
  Taint("fs");
  setfsgid(65534);
  setfsuid(65534);
  g_caller = testapp::ReadPrivs();
  int fd = open(g_file.c_str(), O_RDONLY | O_CLOEXEC);
  g_caller_open = fd >= 0 ? "0" : testapp::ErrName(errno);
  if (fd >= 0) close(fd);
  if (int rc = CreateAndJoin()) g_error = "pthread_create: " + testapp::ErrName(rc);
  return nullptr;
}

// ---- --case inline ----

void* InlineWorker(void*) {
  Taint("fs");
  if (g_drop == "caps") {
    if (!testapp::SetCaps(0, 0, 0, true)) testapp::CannotRunHere("inline capset");
  } else if (g_drop == "seccomp") {
    if (!testapp::DenyGetppid(/*inline_syscall=*/true)) testapp::CannotRunHere("inline seccomp");
  } else {
    testapp::Die("unknown --drop " + g_drop);
  }
  g_caller = testapp::ReadPrivs();
  if (int rc = CreateAndJoin()) g_error = "pthread_create: " + testapp::ErrName(rc);
  return nullptr;
}

// ---- --case keepcaps-dance ----

void* Nothing(void*) { return nullptr; }

void* FsWorker(void*) {
  Taint("fs");
  pthread_t t;
  if (pthread_create(&t, nullptr, Nothing, nullptr) != 0) testapp::Die("pthread_create");
  pthread_join(t, nullptr);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 1 << 20);
  if (pthread_create(&t, &a, Nothing, nullptr) != 0) testapp::Die("pthread_create(attr)");
  pthread_attr_destroy(&a);
  pthread_join(t, nullptr);
  return nullptr;
}

void Step(const char* name, int rc) {
  g_steps.emplace_back(name, rc == 0 ? "0" : testapp::ErrName(errno));
}

void KeepcapsDance() {
  pthread_t w;
  if (pthread_create(&w, nullptr, FsWorker, nullptr) != 0) testapp::Die("pthread_create(worker)");
  pthread_join(w, nullptr);
  g_tasks_before = testapp::CountTasks();
  Step("prctl(PR_SET_KEEPCAPS)", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  Step("setresuid", setresuid(65534, 65534, 65534));
  testapp::Privs p = testapp::ReadPrivs();
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  d[0].effective = d[0].permitted = static_cast<uint32_t>(p.cap_prm);
  d[1].effective = d[1].permitted = static_cast<uint32_t>(p.cap_prm >> 32);
  Step("capset", capset(&hdr, d));
  Step("setresgid", setresgid(65534, 65534, 65534));
  g_caller = testapp::ReadPrivs();
  if (int rc = CreateAndJoin()) g_error = "pthread_create: " + testapp::ErrName(rc);
}

// ---- --case raw-netns ----

void* RawNetnsWorker(void*) {
  if (testapp::InlineSyscall(SYS_unshare, CLONE_NEWNET) != 0) testapp::CannotRunHere("inline unshare");
  g_caller_net = testapp::NsInode("net");
  g_caller = testapp::ReadPrivs();
  if (int rc = CreateAndJoin()) g_error = "pthread_create: " + testapp::ErrName(rc);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string* dst = a == "--case" ? &g_case : a == "--mech" ? &g_mech : a == "--drop" ? &g_drop
                     : a == "--taint" ? &g_taint : a == "--mq-name" ? &g_mq_name
                     : a == "--file" ? &g_file : nullptr;
    if (dst == nullptr || i + 1 >= argc) {
      std::fprintf(stderr, "usage: see the header of testapps/priv_forwarded.cc\n");
      return 2;
    }
    *dst = argv[++i];
  }
  if (g_mq_name.empty()) g_mq_name = "/pristine-priv-forwarded-" + std::to_string(getpid());
  sem_init(&g_done, 0, 0);
  g_baseline_net = testapp::NsInode("net");
  void* (*worker)(void*) = nullptr;
  if (g_case == "glibc") {
    if ((g_mech == "aio") && g_file.empty()) return 2;
    worker = GlibcWorker;
  } else if (g_case == "fsuid") {
    worker = FsuidWorker;
  } else if (g_case == "inline") {
    worker = InlineWorker;
  } else if (g_case == "raw-netns") {
    worker = RawNetnsWorker;
  } else if (g_case == "keepcaps-dance") {
    KeepcapsDance();
  } else {
    return 2;
  }
  if (worker != nullptr) {
    pthread_t w;
    if (pthread_create(&w, nullptr, worker, nullptr) != 0) testapp::Die("pthread_create(worker)");
    pthread_join(w, nullptr);
  }

  JsonWriter out;
  out.begin_object();
  out.key("caller"); testapp::WritePrivs(out, g_caller);
  out.key("child");
  if (g_have_child) testapp::WritePrivs(out, g_child); else out.null();
  out.key("child_denied"); out.value(g_child_denied);
  out.key("caller_open"); out.value(g_caller_open);
  out.key("child_open"); out.value(g_child_open);
  out.key("steps");
  out.begin_object();
  for (auto& s : g_steps) {
    out.key(s.first);
    out.value(s.second);
  }
  out.end_object();
  out.key("tasks_before"); out.value(g_tasks_before);
  out.key("baseline_net"); out.value(g_baseline_net);
  out.key("caller_net"); out.value(g_caller_net);
  out.key("child_net"); out.value(g_child_net);
  out.key("error");
  if (g_error.empty()) out.null(); else out.value(g_error);
  out.end_object();
  testapp::PrintJson(out);
  return 0;
}
