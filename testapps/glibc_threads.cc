// SPDX-License-Identifier: Apache-2.0
// glibc_threads: threads that glibc creates internally (timer_create and mq_notify with
// SIGEV_THREAD, getaddrinfo_a, POSIX aio). They are started by glibc's internal create, which an
// LD_PRELOAD interposer of pthread_create never sees.
//
//   glibc_threads --mode timer|mq|gai|aio [--taint net|files|net,files|none] [--mq-name /NAME]
//                 [--file PATH]
//
// The main thread records its net namespace ("baseline_net"); a worker taints itself (default
// net: unshare(CLONE_NEWNET); files: unshare(CLONE_FILES), so that the descriptors it opens next
// (the message queue, the aio file) exist in its private fd table only), records "caller_net"
// and "caller_files_private", and makes the call with a SIGEV_THREAD
// notification; the notification function records its own /proc/thread-self/ns/net
// ("callback_net") and what the call produced, and wakes the worker:
//   timer  timer_create(CLOCK_MONOTONIC) + timer_settime (1 ms, one shot): "detail" is "fired"
//   mq     mq_open (--mq-name, default /pristine-glibc-threads-<pid>; unlinked at the end),
//          mq_notify, mq_send("pristine"): the callback mq_receive()s it into "detail"
//   gai    getaddrinfo_a(GAI_NOWAIT) for "localhost": "detail" is the first address, numeric
//   aio    aio_read of --file (required for aio): "detail" is what was read (up to 255 bytes)
// The worker records its net namespace again after the call ("caller_net_after").
// One JSON object on stdout: {"mode", "baseline_net", "caller_net", "caller_net_after",
// "caller_files_private", "callback_net", "ok", "detail", "error"}; exit 0 (also when the call failed: see "error"), 2 usage, 3 unsupported.

#include <aio.h>
#include <arpa/inet.h>
#include <mqueue.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>

#include "thread_state.h"

namespace {

std::string g_mode;
bool g_taint_net = true;
bool g_taint_files = false;
std::string g_mq_name;
std::string g_file;

struct Ctx {
  sem_t done;
  long long callback_net = -1;
  bool ok = false;
  std::string detail;
  mqd_t mq = static_cast<mqd_t>(-1);
  struct gaicb gai;
  struct addrinfo hints;
  struct aiocb aio;
  char buf[256];
};

Ctx g_ctx;

void Finish(Ctx* c) {
  while (sem_post(&c->done) != 0) {
  }
}

void TimerCb(union sigval v) {
  auto* c = static_cast<Ctx*>(v.sival_ptr);
  c->callback_net = testapp::NsInode("net");
  c->ok = true;
  c->detail = "fired";
  Finish(c);
}

void MqCb(union sigval v) {
  auto* c = static_cast<Ctx*>(v.sival_ptr);
  c->callback_net = testapp::NsInode("net");
  char msg[128];
  ssize_t n = mq_receive(c->mq, msg, sizeof msg, nullptr);
  if (n >= 0) {
    c->ok = true;
    c->detail.assign(msg, static_cast<size_t>(n));
  } else {
    c->detail = "mq_receive: " + testapp::ErrName(errno);
  }
  Finish(c);
}

void GaiCb(union sigval v) {
  auto* c = static_cast<Ctx*>(v.sival_ptr);
  c->callback_net = testapp::NsInode("net");
  int e = gai_error(&c->gai);
  if (e == 0 && c->gai.ar_result != nullptr) {
    char host[NI_MAXHOST];
    const struct addrinfo* ai = c->gai.ar_result;
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST) == 0) {
      c->ok = true;
      c->detail = host;
    } else {
      c->detail = "getnameinfo failed";
    }
  } else {
    c->detail = std::string("gai_error: ") + gai_strerror(e);
  }
  Finish(c);
}

void AioCb(union sigval v) {
  auto* c = static_cast<Ctx*>(v.sival_ptr);
  c->callback_net = testapp::NsInode("net");
  int e = aio_error(&c->aio);
  if (e == 0) {
    ssize_t n = aio_return(&c->aio);
    c->ok = n >= 0;
    c->detail.assign(c->buf, n > 0 ? static_cast<size_t>(n) : 0);
  } else {
    c->detail = "aio_error: " + testapp::ErrName(e);
  }
  Finish(c);
}

struct sigevent ThreadEvent(void (*fn)(union sigval), Ctx* c) {
  struct sigevent sev;
  std::memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = fn;
  sev.sigev_value.sival_ptr = c;
  return sev;
}

// Makes the call; returns "" or an error description (then no callback is awaited).
std::string Start(Ctx* c) {
  if (g_mode == "timer") {
    struct sigevent sev = ThreadEvent(TimerCb, c);
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) return "timer_create: " + testapp::ErrName(errno);
    struct itimerspec its;
    std::memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 1000000;
    if (timer_settime(t, 0, &its, nullptr) != 0) return "timer_settime: " + testapp::ErrName(errno);
    return "";
  }
  if (g_mode == "mq") {
    struct mq_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.mq_maxmsg = 4;
    attr.mq_msgsize = 128;
    c->mq = mq_open(g_mq_name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
    if (c->mq == static_cast<mqd_t>(-1)) testapp::CannotRunHere("mq_open " + g_mq_name + ": " + testapp::ErrName(errno));
    struct sigevent sev = ThreadEvent(MqCb, c);
    if (mq_notify(c->mq, &sev) != 0) return "mq_notify: " + testapp::ErrName(errno);
    if (mq_send(c->mq, "pristine", 8, 0) != 0) return "mq_send: " + testapp::ErrName(errno);
    return "";
  }
  if (g_mode == "gai") {
    std::memset(&c->gai, 0, sizeof c->gai);
    std::memset(&c->hints, 0, sizeof c->hints);
    c->hints.ai_family = AF_UNSPEC;
    c->hints.ai_socktype = SOCK_STREAM;
    c->gai.ar_name = "localhost";
    c->gai.ar_request = &c->hints;
    struct gaicb* list[1] = {&c->gai};
    struct sigevent sev = ThreadEvent(GaiCb, c);
    int r = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (r != 0) return std::string("getaddrinfo_a: ") + gai_strerror(r);
    return "";
  }
  // aio
  int fd = open(g_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "open " + g_file + ": " + testapp::ErrName(errno);
  std::memset(&c->aio, 0, sizeof c->aio);
  c->aio.aio_fildes = fd;
  c->aio.aio_buf = c->buf;
  c->aio.aio_nbytes = sizeof c->buf - 1;
  c->aio.aio_offset = 0;
  c->aio.aio_sigevent = ThreadEvent(AioCb, c);
  if (aio_read(&c->aio) != 0) return "aio_read: " + testapp::ErrName(errno);
  return "";
}

struct WorkerOut {
  long long caller_net = -1, caller_net_after = -1;
  int files_private = -1;
  std::string error;
};

pid_t g_main_tid;

void* Worker(void* p) {
  auto* out = static_cast<WorkerOut*>(p);
  if (g_taint_net && unshare(CLONE_NEWNET) != 0) testapp::CannotRunHere("unshare(CLONE_NEWNET): " + testapp::ErrName(errno));
  if (g_taint_files && unshare(CLONE_FILES) != 0) testapp::CannotRunHere("unshare(CLONE_FILES): " + testapp::ErrName(errno));
  out->caller_net = testapp::NsInode("net");
  // kcmp(main, self, KCMP_FILES): 0 means the same fd table.
  long k = syscall(SYS_kcmp, static_cast<long>(g_main_tid), static_cast<long>(testapp::Gettid()),
                   2 /* KCMP_FILES */, 0L, 0L);
  out->files_private = k < 0 ? -1 : (k != 0 ? 1 : 0);
  out->error = Start(&g_ctx);
  if (out->error.empty()) {
    while (sem_wait(&g_ctx.done) != 0) {
    }
  }
  out->caller_net_after = testapp::NsInode("net");
  return nullptr;
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: glibc_threads --mode timer|mq|gai|aio [--taint net|files|net,files|none]\n"
               "                     [--mq-name /NAME] [--file PATH]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    std::string v = argv[++i];
    if (a == "--mode") g_mode = v;
    else if (a == "--taint" && (v == "net" || v == "files" || v == "net,files" || v == "none")) {
      g_taint_net = v == "net" || v == "net,files";
      g_taint_files = v == "files" || v == "net,files";
    }
    else if (a == "--mq-name") g_mq_name = v;
    else if (a == "--file") g_file = v;
    else Usage();
  }
  if (g_mode != "timer" && g_mode != "mq" && g_mode != "gai" && g_mode != "aio") Usage();
  if (g_mode == "aio" && g_file.empty()) Usage();
  if (g_mq_name.empty()) g_mq_name = "/pristine-glibc-threads-" + std::to_string(getpid());
  sem_init(&g_ctx.done, 0, 0);
  long long baseline = testapp::NsInode("net");
  g_main_tid = testapp::Gettid();
  WorkerOut out;
  pthread_t th;
  int r = pthread_create(&th, nullptr, Worker, &out);
  if (r != 0) testapp::Die("worker: " + testapp::ErrName(r));
  pthread_join(th, nullptr);
  if (g_mode == "mq" && g_ctx.mq != static_cast<mqd_t>(-1)) {
    mq_close(g_ctx.mq);
    mq_unlink(g_mq_name.c_str());
  }
  JsonWriter w;
  w.begin_object();
  w.key("mode"); w.value(g_mode);
  w.key("baseline_net"); w.value(baseline);
  w.key("caller_net"); w.value(out.caller_net);
  w.key("caller_net_after"); w.value(out.caller_net_after);
  w.key("caller_files_private");
  if (out.files_private < 0) w.null(); else w.value(out.files_private == 1);
  w.key("callback_net"); w.value(g_ctx.callback_net);
  w.key("ok"); w.value(g_ctx.ok);
  w.key("detail"); w.value(g_ctx.detail);
  w.key("error");
  if (out.error.empty()) w.null(); else w.value(out.error);
  w.end_object();
  testapp::PrintJson(w);
  // glibc's helper threads (timer, mq, aio, gai) may still exist: leave without destructors.
  _exit(0);
}
