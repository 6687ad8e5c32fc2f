// SPDX-License-Identifier: Apache-2.0
// forward_all: pthread_create's semantics, observed from the program's side, for
// pytests/test_forward_all.py, which runs every case without the library and under
// PRISTINE_OPTIONS=forward=all (every create forwarded) and compares the two.
//
//   forward_all CASE [--unshare fs|net]   prints one JSON object: what the case observed
//
// --unshare fs: every thread that creates threads for the case (main and the helpers) first
// gives itself a private fs_struct (unshare(CLONE_FS)), which nothing in the cases reads and
// which the library's default policy isolates by forwarding the create: the same cases then
// exercise the forwarded path without forward=all. --unshare net: a network namespace of its
// own (unshare(CLONE_NEWNET)), which the library isolates on the caller (a "repaired"
// create: the caller's own create, with the baseline's namespace re-entered by the new
// thread).
//
// Cases (see Cases() below): creates, identity, exit_values, detach, join_errors, tls,
// cancel, cancel_state, inherit_seen, inherit_unseen, inherit_affinity, fenv, default_attr,
// errors, threadless.
// Exit codes: 0 the JSON was printed, 2 bad usage, 3 this machine cannot run the case
// (message on stderr), 1 a step the case relies on failed (message on stderr).
//
// Nothing depends on timing: threads hand over through semaphores and joins only.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "json_out.h"

// glibc's system call wrapper, which no header declares (libcap's does).
extern "C" int capset(cap_user_header_t header, const cap_user_data_t data);

namespace {

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "forward_all: %s\n", what.c_str());
  exit(1);
}

[[noreturn]] void Unsupported(const std::string& what) {
  fprintf(stderr, "forward_all: cannot run here: %s\n", what.c_str());
  exit(3);
}

void Check(int rc, const char* what) {
  if (rc != 0) Die(std::string(what) + ": " + strerror(rc));
}

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::string ErrName(int err) {
  if (err == 0) return "0";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

int g_unshare_flags = 0;

void UnshareIfAsked() {
  if (g_unshare_flags != 0 && unshare(g_unshare_flags) != 0) {
    Unsupported(std::string("unshare: ") + strerror(errno));
  }
}

// Runs `f` on a thread of its own, so that what it changes about its thread stays there.
void OnOwnThread(const std::function<void()>& f) {
  std::function<void()> copy = f;
  pthread_t t;
  Check(pthread_create(&t, nullptr, [](void* p) -> void* {
          UnshareIfAsked();
          (*static_cast<std::function<void()>*>(p))();
          return nullptr;
        }, &copy), "pthread_create (helper)");
  Check(pthread_join(t, nullptr), "pthread_join (helper)");
}

void* ReturnArg(void* arg) { return arg; }

// ---------------------------------------------------------------------------------------------
// creates: one of each kind of create, all joined; the report counts them.

int C11Zero(void*) { return 0; }

void Creates(JsonWriter& w) {
  int n = 0;
  pthread_t t;
  for (int i = 0; i < 3; ++i, ++n) {  // null attr: a spare's job when forwarded
    Check(pthread_create(&t, nullptr, ReturnArg, nullptr), "pthread_create");
    Check(pthread_join(t, nullptr), "pthread_join");
  }
  pthread_attr_t attr;  // attributes: the template's job when forwarded
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  Check(pthread_create(&t, &attr, ReturnArg, nullptr), "pthread_create (attr)");
  Check(pthread_join(t, nullptr), "pthread_join");
  pthread_attr_destroy(&attr);
  ++n;
  std::thread([] {}).join();
  ++n;
  thrd_t c11;
  if (thrd_create(&c11, C11Zero, nullptr) != thrd_success) Die("thrd_create");
  thrd_join(c11, nullptr);
  ++n;
  w.key("created");
  w.value(n);
}

// ---------------------------------------------------------------------------------------------
// identity: the pthread_t the creator gets is the new thread's own, for every operation.

struct IdentityArg {
  sem_t started, go;
  pthread_t self;
  pid_t tid;
};

void* IdentityMain(void* p) {
  auto* a = static_cast<IdentityArg*>(p);
  a->self = pthread_self();
  a->tid = Gettid();
  sem_post(&a->started);
  while (sem_wait(&a->go) != 0) {
  }
  return reinterpret_cast<void*>(0x1234);
}

void Identity(JsonWriter& w) {
  IdentityArg a;
  sem_init(&a.started, 0, 0);
  sem_init(&a.go, 0, 0);
  pthread_t t;
  Check(pthread_create(&t, nullptr, IdentityMain, &a), "pthread_create");
  while (sem_wait(&a.started) != 0) {
  }
  w.key("self_equals_returned");
  w.value(pthread_equal(a.self, t) != 0);
  w.key("tid_is_new");
  w.value(a.tid != Gettid() && a.tid != getpid());
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", a.tid);
  w.key("tid_in_process");
  w.value(access(path, F_OK) == 0);
  // pthread_kill with signal 0 and pthread_getcpuclockid address the thread.
  w.key("kill0");
  w.value(ErrName(pthread_kill(t, 0)));
  clockid_t clock;
  w.key("getcpuclockid");
  w.value(ErrName(pthread_getcpuclockid(t, &clock)));
  sem_post(&a.go);
  void* ret = nullptr;
  w.key("join");
  w.value(ErrName(pthread_join(t, &ret)));
  w.key("join_value");
  w.value(reinterpret_cast<uintptr_t>(ret) == 0x1234);
}

// ---------------------------------------------------------------------------------------------
// exit_values: pthread_exit from a nested call, thrd_exit, a C11 start's int.

[[gnu::noinline]] void ExitFromInside(void* value) { pthread_exit(value); }

void* ExitMain(void*) {
  ExitFromInside(reinterpret_cast<void*>(0xbeef));
  return nullptr;
}

int C11Exit(void*) { thrd_exit(7); }
int C11Return(void*) { return 9; }

void ExitValues(JsonWriter& w) {
  pthread_t t;
  void* ret = nullptr;
  Check(pthread_create(&t, nullptr, ExitMain, nullptr), "pthread_create");
  Check(pthread_join(t, &ret), "pthread_join");
  w.key("pthread_exit_value");
  w.value(static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(ret)));
  int res = -1;
  thrd_t c;
  if (thrd_create(&c, C11Exit, nullptr) != thrd_success) Die("thrd_create");
  w.key("thrd_join");
  w.value(thrd_join(c, &res));
  w.key("thrd_exit_value");
  w.value(res);
  if (thrd_create(&c, C11Return, nullptr) != thrd_success) Die("thrd_create");
  thrd_join(c, &res);
  w.key("thrd_return_value");
  w.value(res);
}

// ---------------------------------------------------------------------------------------------
// detach: pthread_detach of a running thread, then what join and detach answer for it; a
// thread created detached.

struct Gate {
  sem_t go, done;
};

void* WaitGate(void* p) {
  auto* g = static_cast<Gate*>(p);
  while (sem_wait(&g->go) != 0) {
  }
  pthread_attr_t attr;
  int detached = -1;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getdetachstate(&attr, &detached);
    pthread_attr_destroy(&attr);
  }
  sem_post(&g->done);
  return reinterpret_cast<void*>(static_cast<intptr_t>(detached));
}

void Detach(JsonWriter& w) {
  Gate g;
  sem_init(&g.go, 0, 0);
  sem_init(&g.done, 0, 0);
  pthread_t t;
  Check(pthread_create(&t, nullptr, WaitGate, &g), "pthread_create");
  w.key("detach");
  w.value(ErrName(pthread_detach(t)));
  // The thread waits on the gate: its descriptor is still valid for these two.
  w.key("join_detached");
  w.value(ErrName(pthread_join(t, nullptr)));
  w.key("detach_again");
  w.value(ErrName(pthread_detach(t)));
  sem_post(&g.go);
  while (sem_wait(&g.done) != 0) {
  }

  // Created detached: the thread reports its own detach state.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  Gate g2;
  sem_init(&g2.go, 0, 0);
  sem_init(&g2.done, 0, 0);
  static int seen = -1;
  Check(pthread_create(&t, &attr, [](void* p) -> void* {
          auto* gate = static_cast<Gate*>(p);
          pthread_attr_t a;
          if (pthread_getattr_np(pthread_self(), &a) == 0) {
            pthread_attr_getdetachstate(&a, &seen);
            pthread_attr_destroy(&a);
          }
          while (sem_wait(&gate->go) != 0) {
          }
          sem_post(&gate->done);
          return nullptr;
        }, &g2), "pthread_create (detached)");
  pthread_attr_destroy(&attr);
  w.key("join_created_detached");
  w.value(ErrName(pthread_join(t, nullptr)));
  sem_post(&g2.go);
  while (sem_wait(&g2.done) != 0) {
  }
  w.key("created_detached_state");
  w.value(seen == PTHREAD_CREATE_DETACHED ? "detached" : "joinable");
}

// ---------------------------------------------------------------------------------------------
// join_errors: joining oneself.

void JoinErrors(JsonWriter& w) {
  static int self_join = -1;
  pthread_t t;
  Check(pthread_create(&t, nullptr, [](void*) -> void* {
          self_join = pthread_join(pthread_self(), nullptr);
          return nullptr;
        }, nullptr), "pthread_create");
  Check(pthread_join(t, nullptr), "pthread_join");
  w.key("join_self");
  w.value(ErrName(self_join));
}

// ---------------------------------------------------------------------------------------------
// tls: a new thread's TLS is fresh (initial values, not its creator's), its thread_local
// objects are constructed for it, its keys' destructors run at its exit, errno starts at 0.

__thread int t_counter = 42;
int g_ctor_runs = 0;
struct PerThread {
  int value = 5;
  PerThread() { __atomic_add_fetch(&g_ctor_runs, 1, __ATOMIC_RELAXED); }
};
thread_local PerThread t_object;
pthread_key_t g_key;
void* g_destroyed = nullptr;
int g_destructor_runs = 0;

void Tls(JsonWriter& w) {
  t_counter = 7;
  t_object.value = 6;
  int ctor_before = g_ctor_runs;
  Check(pthread_key_create(&g_key, [](void* v) {
          g_destroyed = v;
          ++g_destructor_runs;
        }), "pthread_key_create");
  Check(pthread_setspecific(g_key, reinterpret_cast<void*>(0x77)), "pthread_setspecific");
  struct Seen {
    int counter, object, errno_at_start;
    void* key_value;
    bool distinct_address;
  };
  static Seen seen;
  static int* main_counter = &t_counter;
  errno = EBADF;
  pthread_t t;
  Check(pthread_create(&t, nullptr, [](void*) -> void* {
          seen.errno_at_start = errno;
          seen.counter = t_counter;
          seen.object = t_object.value;
          seen.key_value = pthread_getspecific(g_key);
          seen.distinct_address = &t_counter != main_counter;
          pthread_setspecific(g_key, reinterpret_cast<void*>(0x99));
          return nullptr;
        }, nullptr), "pthread_create");
  Check(pthread_join(t, nullptr), "pthread_join");
  w.key("errno_at_start");
  w.value(ErrName(seen.errno_at_start));
  w.key("tls_initial_value");
  w.value(seen.counter);
  w.key("tls_distinct");
  w.value(seen.distinct_address);
  w.key("thread_local_constructed");
  w.value(g_ctor_runs - ctor_before);
  w.key("thread_local_value");
  w.value(seen.object);
  w.key("key_value_at_start");
  w.value(seen.key_value == nullptr ? "null" : "set");
  w.key("key_destructor_runs");
  w.value(g_destructor_runs);
  w.key("key_destructor_value");
  w.value(static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(g_destroyed)));
  w.key("creator_tls_kept");
  w.value(t_counter == 7 && t_object.value == 6);
}

// ---------------------------------------------------------------------------------------------
// cancel: deferred cancellation at a cancellation point, cancellation requested before the
// new thread ran any of its code, asynchronous cancellation; cleanup handlers run.

int g_cleanups = 0;
void CountCleanup(void*) { __atomic_add_fetch(&g_cleanups, 1, __ATOMIC_RELAXED); }

void* BlockForever(void* started) {
  pthread_cleanup_push(CountCleanup, nullptr);
  if (started != nullptr) sem_post(static_cast<sem_t*>(started));
  for (;;) pause();  // a cancellation point
  pthread_cleanup_pop(0);
  return nullptr;
}

// No cleanup handler here: in C++ one is a destructor, and an asynchronous cancellation
// unwinding from between two call sites of a function with destructors terminates.
void* SpinAsync(void* started) {
  int old;
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
  sem_post(static_cast<sem_t*>(started));
  for (volatile unsigned long i = 0;; ++i) {
  }
  return nullptr;
}

void Cancel(JsonWriter& w) {
  sem_t started;
  sem_init(&started, 0, 0);
  pthread_t t;
  void* ret = nullptr;
  // Blocked in pause(), then cancelled.
  Check(pthread_create(&t, nullptr, BlockForever, &started), "pthread_create");
  while (sem_wait(&started) != 0) {
  }
  w.key("cancel_blocked");
  w.value(ErrName(pthread_cancel(t)));
  Check(pthread_join(t, &ret), "pthread_join");
  w.key("blocked_result");
  w.value(ret == PTHREAD_CANCELED ? "canceled" : "returned");
  // Cancelled before it may have run at all.
  for (int i = 0; i < 20; ++i) {
    Check(pthread_create(&t, nullptr, BlockForever, nullptr), "pthread_create");
    pthread_cancel(t);
    Check(pthread_join(t, &ret), "pthread_join");
    if (ret != PTHREAD_CANCELED) {
      w.key("early_result");
      w.value("returned");
    }
  }
  // Asynchronous cancellation of a thread spinning without any cancellation point.
  Check(pthread_create(&t, nullptr, SpinAsync, &started), "pthread_create");
  while (sem_wait(&started) != 0) {
  }
  pthread_cancel(t);
  Check(pthread_join(t, &ret), "pthread_join");
  w.key("async_result");
  w.value(ret == PTHREAD_CANCELED ? "canceled" : "returned");
  // The blocked thread's cleanup handler ran, and one for each early thread that reached
  // its push (how many did varies).
  w.key("cleanups_at_least_one");
  w.value(g_cleanups >= 1);
}

// cancel_state: a new thread starts with cancellation enabled and deferred, whatever its
// creator's state.
void CancelState(JsonWriter& w) {
  static int state = -1, type = -1;
  OnOwnThread([] {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    pthread_t t;
    Check(pthread_create(&t, nullptr, [](void*) -> void* {
            pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state);
            pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
            return nullptr;
          }, nullptr), "pthread_create");
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    Check(pthread_join(t, nullptr), "pthread_join");
  });
  w.key("child_cancel_state");
  w.value(state == PTHREAD_CANCEL_ENABLE ? "enable" : "disable");
  w.key("child_cancel_type");
  w.value(type == PTHREAD_CANCEL_DEFERRED ? "deferred" : "asynchronous");
}

// ---------------------------------------------------------------------------------------------
// inherit_seen / inherit_unseen: what the default policy inherits (signal mask, name,
// scheduling), changed through libc's entry points (seen by the library) or behind its
// back (raw system calls, /proc), is the new thread's as without the library.

struct Inherited {
  bool sigusr1_blocked = false;
  char name[16] = {};
  int nice = 0;
};

void* ReadInherited(void* p) {
  auto* r = static_cast<Inherited*>(p);
  sigset_t set;
  pthread_sigmask(SIG_SETMASK, nullptr, &set);
  r->sigusr1_blocked = sigismember(&set, SIGUSR1) == 1;
  prctl(PR_GET_NAME, r->name);
  errno = 0;
  r->nice = getpriority(PRIO_PROCESS, 0);
  return nullptr;
}

void WriteInherited(JsonWriter& w, const Inherited& r) {
  w.key("sigusr1_blocked");
  w.value(r.sigusr1_blocked);
  w.key("name");
  w.value(r.name);
  w.key("nice");
  w.value(r.nice);
}

void InheritSeen(JsonWriter& w) {
  static Inherited r;
  OnOwnThread([] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    pthread_setname_np(pthread_self(), "seen-name");
    setpriority(PRIO_PROCESS, 0, 5);
    pthread_t t;
    Check(pthread_create(&t, nullptr, ReadInherited, &r), "pthread_create");
    Check(pthread_join(t, nullptr), "pthread_join");
  });
  WriteInherited(w, r);
}

void InheritUnseen(JsonWriter& w) {
  static Inherited r;
  OnOwnThread([] {
    uint64_t mask = 1ull << (SIGUSR1 - 1);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &mask, nullptr, sizeof mask);
    int fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "unseen-name", 11) != 11) Die("write /proc/thread-self/comm");
    close(fd);
    if (syscall(SYS_setpriority, PRIO_PROCESS, 0, 6) != 0) Die("setpriority");
    pthread_t t;
    Check(pthread_create(&t, nullptr, ReadInherited, &r), "pthread_create");
    Check(pthread_join(t, nullptr), "pthread_join");
  });
  WriteInherited(w, r);
}

// inherit_affinity: a thread has its creator's CPU set from its first instruction: read by
// the creator as soon as pthread_create returns (for a library that inherits the CPU set).

void InheritAffinity(JsonWriter& w) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) Unsupported("one CPU: no CPU set differs from another");
  static int matching = 0, total = 0;
  static long last_cpu = cpus - 1;
  OnOwnThread([] {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    CPU_SET(last_cpu, &mine);
    if (sched_setaffinity(0, sizeof mine, &mine) != 0) Die("sched_setaffinity");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (int i = 0; i < 20; ++i) {
      sem_t go;
      sem_init(&go, 0, 0);
      pthread_t t;
      Check(pthread_create(&t, i % 2 ? &attr : nullptr, [](void* p) -> void* {
              while (sem_wait(static_cast<sem_t*>(p)) != 0) {
              }
              return nullptr;
            }, &go), "pthread_create");
      cpu_set_t theirs;
      Check(pthread_getaffinity_np(t, sizeof theirs, &theirs), "pthread_getaffinity_np");
      matching += CPU_EQUAL(&theirs, &mine) ? 1 : 0;
      ++total;
      sem_post(&go);
      Check(pthread_join(t, nullptr), "pthread_join");
    }
    pthread_attr_destroy(&attr);
  });
  w.key("creates");
  w.value(total);
  w.key("creator_cpu_set_at_return");
  w.value(matching);
}

// ---------------------------------------------------------------------------------------------
// fenv: the floating-point environment (rounding mode, raised exception flags) is inherited
// from the creating thread (POSIX, pthread_create).

void Fenv(JsonWriter& w) {
  struct Seen {
    int round;
    int excepts;
  };
  static Seen seen;
  OnOwnThread([] {
    fesetround(FE_UPWARD);
    feclearexcept(FE_ALL_EXCEPT);
    feraiseexcept(FE_DIVBYZERO | FE_INEXACT);
    pthread_t t;
    Check(pthread_create(&t, nullptr, [](void*) -> void* {
            seen.round = fegetround();
            seen.excepts = fetestexcept(FE_ALL_EXCEPT);
            return nullptr;
          }, nullptr), "pthread_create");
    Check(pthread_join(t, nullptr), "pthread_join");
  });
  w.key("rounding_upward");
  w.value(seen.round == FE_UPWARD);
  w.key("divbyzero_raised");
  w.value((seen.excepts & FE_DIVBYZERO) != 0);
  w.key("inexact_raised");
  w.value((seen.excepts & FE_INEXACT) != 0);
}

// ---------------------------------------------------------------------------------------------
// default_attr: pthread_setattr_default_np changes what a null attr means, for threads
// created after it (some created before, so that whatever serves null-attr creates exists).

void DefaultAttr(JsonWriter& w) {
  for (int i = 0; i < 4; ++i) {
    pthread_t t;
    Check(pthread_create(&t, nullptr, ReturnArg, nullptr), "pthread_create");
    Check(pthread_join(t, nullptr), "pthread_join");
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  pthread_attr_setguardsize(&attr, 1 << 16);
  Check(pthread_setattr_default_np(&attr), "pthread_setattr_default_np");
  pthread_attr_destroy(&attr);
  static size_t stack = 0, guard = 0;
  auto read = [](void*) -> void* {
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
      pthread_attr_getstacksize(&a, &stack);
      pthread_attr_getguardsize(&a, &guard);
      pthread_attr_destroy(&a);
    }
    return nullptr;
  };
  pthread_t t;
  Check(pthread_create(&t, nullptr, read, nullptr), "pthread_create");
  Check(pthread_join(t, nullptr), "pthread_join");
  w.key("stacksize");
  w.value(static_cast<unsigned long long>(stack));
  w.key("guardsize");
  w.value(static_cast<unsigned long long>(guard));
  size_t thread_stack = 0;
  std::thread([&] {
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
      pthread_attr_getstacksize(&a, &thread_stack);
      pthread_attr_destroy(&a);
    }
  }).join();
  w.key("std_thread_stacksize");
  w.value(static_cast<unsigned long long>(thread_stack));
}

// ---------------------------------------------------------------------------------------------
// errors: what pthread_create returns for attributes it refuses, and for explicit real-time
// scheduling asked by a thread that lacks CAP_SYS_NICE (the library's threads hold it).

void Errors(JsonWriter& w) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
  struct sched_param param = {};
  param.sched_priority = 0;  // not a SCHED_FIFO priority: the kernel refuses it
  pthread_attr_setschedparam(&attr, &param);
  pthread_t t;
  int rc = pthread_create(&t, &attr, ReturnArg, nullptr);
  if (rc == 0) pthread_join(t, nullptr);
  w.key("fifo_priority_0");
  w.value(ErrName(rc));

  param.sched_priority = 10;
  pthread_attr_setschedparam(&attr, &param);
  static int policy = -1;
  rc = pthread_create(&t, &attr, [](void*) -> void* {
    policy = sched_getscheduler(0);
    return nullptr;
  }, nullptr);
  if (rc == 0) pthread_join(t, nullptr);
  w.key("fifo_10_privileged");
  w.value(ErrName(rc));
  w.key("fifo_10_privileged_policy");
  w.value(policy == SCHED_FIFO ? "fifo" : std::to_string(policy));

  static const pthread_attr_t* fifo = &attr;
  static int unprivileged_rc = -1, unprivileged_policy = -1;
  OnOwnThread([] {
    // This thread gives up CAP_SYS_NICE (effective and permitted); RLIMIT_RTPRIO is 0.
    struct rlimit rt = {0, 0};
    if (setrlimit(RLIMIT_RTPRIO, &rt) != 0) Die("setrlimit RLIMIT_RTPRIO");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) Unsupported("capget");
    if (!(data[0].effective & (1u << CAP_SYS_NICE))) Unsupported("not privileged: no CAP_SYS_NICE");
    data[0].effective &= ~(1u << CAP_SYS_NICE);
    data[0].permitted &= ~(1u << CAP_SYS_NICE);
    if (capset(&header, data) != 0) Die("capset");
    pthread_t t2;
    unprivileged_rc = pthread_create(&t2, fifo, [](void*) -> void* {
      unprivileged_policy = sched_getscheduler(0);
      return nullptr;
    }, nullptr);
    if (unprivileged_rc == 0) pthread_join(t2, nullptr);
  });
  pthread_attr_destroy(&attr);
  w.key("fifo_10_without_cap_sys_nice");
  w.value(ErrName(unprivileged_rc));
  w.key("fifo_10_without_cap_sys_nice_policy");
  w.value(unprivileged_policy);
}

// ---------------------------------------------------------------------------------------------
// threadless: a program that creates no thread has no other thread, and its main thread may
// end it with pthread_exit (main() does that after printing for this case).

void Threadless(JsonWriter& w) {
  int tasks = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) tasks += e->d_name[0] != '.';
    closedir(d);
  }
  w.key("tasks");
  w.value(tasks);
}

const std::map<std::string, void (*)(JsonWriter&)>& Cases() {
  static const std::map<std::string, void (*)(JsonWriter&)> cases = {
      {"creates", Creates},
      {"identity", Identity},
      {"exit_values", ExitValues},
      {"detach", Detach},
      {"join_errors", JoinErrors},
      {"tls", Tls},
      {"cancel", Cancel},
      {"cancel_state", CancelState},
      {"inherit_seen", InheritSeen},
      {"inherit_unseen", InheritUnseen},
      {"inherit_affinity", InheritAffinity},
      {"fenv", Fenv},
      {"default_attr", DefaultAttr},
      {"errors", Errors},
      {"threadless", Threadless},
  };
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[2], "--unshare") == 0) {
    if (strcmp(argv[3], "fs") == 0) g_unshare_flags = CLONE_FS;
    if (strcmp(argv[3], "net") == 0) g_unshare_flags = CLONE_NEWNET;
  }
  if ((argc != 2 && g_unshare_flags == 0) || Cases().count(argv[1]) == 0) {
    fprintf(stderr, "usage: forward_all CASE [--unshare fs|net]\ncases:");
    for (const auto& c : Cases()) fprintf(stderr, " %s", c.first.c_str());
    fprintf(stderr, "\n");
    return 2;
  }
  UnshareIfAsked();
  JsonWriter w;
  w.begin_object();
  Cases().at(argv[1])(w);
  w.end_object();
  puts(w.str().c_str());
  if (strcmp(argv[1], "threadless") == 0) {
    fflush(stdout);
    pthread_exit(nullptr);  // the process ends with status 0 when its last thread does
  }
  return 0;
}
