// SPDX-License-Identifier: Apache-2.0
// forker: fork, posix_spawn, vfork and system() under the shim (README, "Baseline": a forked
// child's baseline is the forking thread's state).
//
//   forker --mode child-baseline
//     main records its net namespace ("baseline_net"); a worker unshares its net namespace
//     ("caller_net") and forks twice. Each forked child reports, through a pipe:
//       fork 1 ("child1"): its main (the forking thread) creates a thread  -> "t1_net";
//                          a thread of the child unshares net again        -> "t2_net"
//                          and creates a thread                            -> "t3_net"
//       fork 2 ("child2"): its main unshares net again *before* creating any thread ->
//                          "main_net", then creates a thread               -> "t_net"
//     The worker then creates a thread in the parent                       -> "parent_child_net".
//
//   forker --mode stress [--creators K] [--creates N] [--forks M]
//     K threads unshare their net namespace and create+join N threads each, while two threads
//     (one untainted, one that unshared its net namespace) fork M times each; every forked child
//     creates and joins a thread and exit(0)s: exit 10 if the create failed, 12 if the thread was
//     not in the forking thread's net namespace. Reports counts ("fork_statuses": every status
//     other than exit 0); the parent waits for every child.
//
//   forker --mode spawn
//     from the main thread and from a worker that unshared its net namespace: posix_spawn,
//     vfork+execve and system(), each running /bin/sh; reports exit statuses and the net namespace
//     inode the spawned shell saw (stat -L -c %i /proc/self/ns/net).
//
// One JSON object on stdout; exit 0, 2 usage, 3 unsupported here.

#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>

#include "thread_state.h"

extern char** environ;

namespace {

long long NetOf() { return testapp::NsInode("net"); }

// Creates a thread that runs fn (captureless) with arg, joins it; returns the thread's
// net inode (or -errno of the create as a negative number).
long long ThreadNet() {
  long long v = -1;
  pthread_t th;
  int r = pthread_create(&th, nullptr, [](void* p) -> void* {
    *static_cast<long long*>(p) = NetOf();
    return nullptr;
  }, &v);
  if (r != 0) return -r;
  pthread_join(th, nullptr);
  return v;
}

void Unshare(int flags) {
  if (unshare(flags) != 0) testapp::CannotRunHere("unshare: " + testapp::ErrName(errno));
}

int WaitStatus(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return st;
}

// Forks; the child runs body(), which returns a JSON string written to the pipe, then _exit(0).
std::string ForkAndReport(std::string (*body)()) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) testapp::Die("pipe");
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) testapp::Die("fork: " + testapp::ErrName(errno));
  if (pid == 0) {
    close(p[0]);
    std::string s = body();
    const char* d = s.data();
    size_t left = s.size();
    while (left > 0) {
      ssize_t n = write(p[1], d, left);
      if (n <= 0) _exit(1);
      d += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) s.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int st = WaitStatus(pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || s.empty()) {
    JsonWriter w;
    w.begin_object();
    w.key("failed_status"); w.value(st);
    w.end_object();
    return w.str();
  }
  return s;
}

std::string Child1() {
  JsonWriter w;
  w.begin_object();
  w.key("main_net"); w.value(NetOf());
  w.key("t1_net"); w.value(ThreadNet());
  struct R { long long t2 = -1, t3 = -1; } r;
  pthread_t th;
  int rc = pthread_create(&th, nullptr, [](void* p) -> void* {
    auto* r = static_cast<R*>(p);
    Unshare(CLONE_NEWNET);
    r->t2 = NetOf();
    r->t3 = ThreadNet();
    return nullptr;
  }, &r);
  if (rc == 0) pthread_join(th, nullptr);
  w.key("t2_net"); w.value(r.t2);
  w.key("t3_net"); w.value(r.t3);
  w.end_object();
  return w.str();
}

std::string Child2() {
  JsonWriter w;
  w.begin_object();
  w.key("main_net_at_fork"); w.value(NetOf());
  Unshare(CLONE_NEWNET);
  w.key("main_net"); w.value(NetOf());
  w.key("t_net"); w.value(ThreadNet());
  w.end_object();
  return w.str();
}

void ModeChildBaseline() {
  long long baseline = NetOf();
  struct R { long long caller = -1, parent_child = -1; std::string c1, c2; } r;
  pthread_t th;
  if (pthread_create(&th, nullptr, [](void* p) -> void* {
        auto* r = static_cast<R*>(p);
        Unshare(CLONE_NEWNET);
        r->caller = NetOf();
        r->c1 = ForkAndReport(Child1);
        r->c2 = ForkAndReport(Child2);
        r->parent_child = ThreadNet();
        return nullptr;
      }, &r) != 0)
    testapp::Die("worker");
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(baseline);
  w.key("caller_net"); w.value(r.caller);
  w.key("child1"); w.raw(r.c1);
  w.key("child2"); w.raw(r.c2);
  w.key("parent_child_net"); w.value(r.parent_child);
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
// stress

int g_creates = 200, g_forks = 30;
std::atomic<long> g_create_ok{0}, g_create_fail{0}, g_fork_ok{0}, g_fork_bad{0}, g_fork_fail{0};
std::atomic<int> g_creators_done{0};
pthread_mutex_t g_status_mu = PTHREAD_MUTEX_INITIALIZER;
std::vector<int> g_bad_statuses;

void* Nothing(void*) { return nullptr; }

void* Creator(void*) {
  Unshare(CLONE_NEWNET);
  for (int i = 0; i < g_creates; ++i) {
    pthread_t th;
    int r = pthread_create(&th, nullptr, Nothing, nullptr);
    if (r != 0) {
      ++g_create_fail;
      continue;
    }
    pthread_join(th, nullptr);
    ++g_create_ok;
  }
  ++g_creators_done;
  return nullptr;
}

void* Forker(void* tainted) {
  if (tainted != nullptr) Unshare(CLONE_NEWNET);
  for (int i = 0; i < g_forks; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      ++g_fork_fail;
      continue;
    }
    if (pid == 0) {
      // The child's baseline is the forking thread's state: its thread shares our net namespace.
      long long net = ThreadNet();
      if (net < 0) _exit(10);
      if (net != NetOf()) _exit(12);
      exit(0);
    }
    int st = WaitStatus(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ++g_fork_ok;
    else {
      ++g_fork_bad;
      pthread_mutex_lock(&g_status_mu);
      g_bad_statuses.push_back(st);
      pthread_mutex_unlock(&g_status_mu);
    }
  }
  return nullptr;
}

void ModeStress(int creators) {
  std::fflush(nullptr);
  std::vector<pthread_t> ths;
  for (int i = 0; i < creators; ++i) {
    pthread_t th;
    if (pthread_create(&th, nullptr, Creator, nullptr) != 0) testapp::Die("creator");
    ths.push_back(th);
  }
  for (void* tainted : {static_cast<void*>(nullptr), reinterpret_cast<void*>(1)}) {
    pthread_t th;
    if (pthread_create(&th, nullptr, Forker, tainted) != 0) testapp::Die("forker");
    ths.push_back(th);
  }
  for (pthread_t th : ths) pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("creates_expected"); w.value(static_cast<long long>(creators) * g_creates);
  w.key("creates_ok"); w.value(g_create_ok.load());
  w.key("creates_failed"); w.value(g_create_fail.load());
  w.key("forks_expected"); w.value(2LL * g_forks);
  w.key("forks_ok"); w.value(g_fork_ok.load());
  w.key("forks_bad_status"); w.value(g_fork_bad.load());
  w.key("forks_failed"); w.value(g_fork_fail.load());
  w.key("fork_statuses");  // raw wait statuses of the children that did not exit 0
  w.begin_array();
  for (int st : g_bad_statuses) w.value(st);
  w.end_array();
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
// spawn

const char kNetCmd[] = "stat -L -c %i /proc/self/ns/net; exit 7";

struct Spawned {
  int status = -1;
  std::string out;
};

std::string ReadAll(int fd) {
  std::string s;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) s.append(buf, static_cast<size_t>(n));
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Spawned ViaPosixSpawn() {
  Spawned r;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) testapp::Die("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  const char* argv[] = {"sh", "-c", kNetCmd, nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    r.out = "posix_spawn: " + testapp::ErrName(rc);
    return r;
  }
  r.out = ReadAll(p[0]);
  close(p[0]);
  r.status = WaitStatus(pid);
  return r;
}

Spawned ViaVfork() {
  Spawned r;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) testapp::Die("pipe");
  const char* argv[] = {"sh", "-c", kNetCmd, nullptr};
  pid_t pid = vfork();
  if (pid == 0) {
    if (dup2(p[1], 1) < 0) _exit(126);
    execve("/bin/sh", const_cast<char**>(argv), environ);
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    r.out = "vfork: " + testapp::ErrName(errno);
    return r;
  }
  r.out = ReadAll(p[0]);
  close(p[0]);
  r.status = WaitStatus(pid);
  return r;
}

Spawned ViaSystem() {
  Spawned r;
  // system() writes to our stdout: redirect the shell's output to a pipe we read afterwards
  // (the output is a few bytes: the pipe buffer holds it).
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) testapp::Die("pipe");
  std::string cmd = "exec >&" + std::to_string(p[1]) + "; " + kNetCmd;
  // The write end must survive exec: drop O_CLOEXEC on it for the shell.
  fcntl(p[1], F_SETFD, 0);
  r.status = system(cmd.c_str());
  close(p[1]);
  r.out = ReadAll(p[0]);
  close(p[0]);
  return r;
}

void WriteSpawned(JsonWriter& w, const char* key, const Spawned& s) {
  w.key(key);
  w.begin_object();
  w.key("exited"); w.value(s.status >= 0 && WIFEXITED(s.status));
  w.key("exit_status"); w.value(s.status >= 0 && WIFEXITED(s.status) ? WEXITSTATUS(s.status) : -1);
  w.key("output"); w.value(s.out);
  w.end_object();
}

std::string SpawnAll() {
  JsonWriter w;
  w.begin_object();
  w.key("net"); w.value(NetOf());
  WriteSpawned(w, "posix_spawn", ViaPosixSpawn());
  WriteSpawned(w, "vfork", ViaVfork());
  WriteSpawned(w, "system", ViaSystem());
  w.end_object();
  return w.str();
}

void ModeSpawn() {
  std::string from_main = SpawnAll();
  std::string from_worker;
  pthread_t th;
  if (pthread_create(&th, nullptr, [](void* p) -> void* {
        Unshare(CLONE_NEWNET);
        *static_cast<std::string*>(p) = SpawnAll();
        return nullptr;
      }, &from_worker) != 0)
    testapp::Die("worker");
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("main"); w.raw(from_main);
  w.key("tainted_worker"); w.raw(from_worker);
  w.end_object();
  testapp::PrintJson(w);
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: forker --mode child-baseline|stress|spawn [--creators K] [--creates N] "
               "[--forks M]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  int creators = 4;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    std::string v = argv[++i];
    if (a == "--mode") mode = v;
    else if (a == "--creators") creators = std::atoi(v.c_str());
    else if (a == "--creates") g_creates = std::atoi(v.c_str());
    else if (a == "--forks") g_forks = std::atoi(v.c_str());
    else Usage();
  }
  if (mode == "child-baseline") ModeChildBaseline();
  else if (mode == "stress" && creators >= 1) ModeStress(creators);
  else if (mode == "spawn") ModeSpawn();
  else Usage();
  return 0;
}
