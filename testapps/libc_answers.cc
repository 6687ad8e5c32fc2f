// SPDX-License-Identifier: Apache-2.0
// libc_answers: the answers glibc gives to bad arguments of the calls that start glibc's own
// threads (timer_create and mq_notify with SIGEV_THREAD, getaddrinfo_a, aio_read/aio_write/
// aio_fsync and their 64 forms, lio_listio and lio_listio64). The library puts these calls on a
// clean thread, and must give the same result, the same errno and do the same I/O as glibc, bad
// arguments included (issue 18 item 3).
//
//   libc_answers --dir DIR [--taint none|net]
//
// A worker thread (in a new network namespace with --taint net, so that the library hands the
// calls to its clean thread) runs every case in turn; DIR holds the files the aio cases write.
// One JSON object on stdout: {"caller_net", "baseline_net", "cases": {NAME: {"rc", "errno",
// ...what the case observed}}}. Each case waits, after the call, for whatever the call may have
// queued (aio_suspend / gai_suspend, which return at once for a request never queued), so "I/O
// done or not" is read after the fact and never depends on timing. Exit 0, 2 usage, 3 unsupported.

#include <aio.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "issue3_util.h"

namespace {

std::string g_dir;
bool g_taint_net = false;

// The outcome of one case.
struct Outcome {
  long rc = 0;
  int err = 0;
  JsonWriter extra;  // more keys, already written (object body without braces)
  bool has_extra = false;
};

struct Case {
  const char* name;
  void (*run)(Outcome*);
};

// A file in DIR, created empty; its descriptor.
int NewFile(const char* name) {
  std::string path = g_dir + "/" + name;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) t3::Die("open " + path + ": " + t3::ErrName(errno));
  return fd;
}

// The file's contents, read with pread (not through aio).
std::string Contents(int fd) {
  std::string s;
  char buf[256];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return s;
}

// Waits until none of `list` is still queued. aio_suspend returns at once for a request that was
// never queued (its error code is not EINPROGRESS). The timeout is a hang guard only.
void DrainAio(struct aiocb* const* list, int n) {
  for (int i = 0; i < n; ++i) {
    if (list[i] == nullptr) continue;
    for (int tries = 0; aio_error(list[i]) == EINPROGRESS && tries < 600; ++tries) {
      const struct aiocb* one[1] = {list[i]};
      struct timespec ts = {0, 100 * 1000 * 1000};
      aio_suspend(one, 1, &ts);
    }
  }
}

void WriteCb(struct aiocb* cb, int fd, const char* text, off_t off) {
  std::memset(cb, 0, sizeof *cb);
  cb->aio_fildes = fd;
  cb->aio_buf = const_cast<char*>(text);
  cb->aio_nbytes = std::strlen(text);
  cb->aio_offset = off;
  cb->aio_lio_opcode = LIO_WRITE;
  cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

void Extra(Outcome* o, const char* key, const std::string& v) {
  o->has_extra = true;
  o->extra.key(key);
  o->extra.value(v);
}
void Extra(Outcome* o, const char* key, long long v) {
  o->has_extra = true;
  o->extra.key(key);
  o->extra.value(v);
}
void ExtraErr(Outcome* o, const char* key, int e) { Extra(o, key, t3::ErrName(e)); }

template <typename F>
void Call(Outcome* o, F f) {
  errno = 0;
  o->rc = f();
  o->err = errno;
}

// --- lio_listio -------------------------------------------------------------------------------

// One write and the given mode; what was written once anything queued has finished.
void LioMode(Outcome* o, int mode, bool use64) {
  int fd = NewFile(use64 ? "lio64-mode" : "lio-mode");
  struct aiocb cb;
  WriteCb(&cb, fd, "written", 0);
  struct aiocb* list[1] = {&cb};
  if (use64) {
    static_assert(sizeof(struct aiocb64) == sizeof(struct aiocb), "aiocb64 is aiocb");
    Call(o, [&] {
      return lio_listio64(mode, reinterpret_cast<struct aiocb64* const*>(list), 1, nullptr);
    });
  } else {
    Call(o, [&] { return lio_listio(mode, list, 1, nullptr); });
  }
  DrainAio(list, 1);
  Extra(o, "file", Contents(fd));
  close(fd);
}

void LioBadMode(Outcome* o) { LioMode(o, 12345, false); }
void LioNegativeMode(Outcome* o) { LioMode(o, -1, false); }
void Lio64BadMode(Outcome* o) { LioMode(o, 12345, true); }

// One good write and one request glibc refuses (aio_reqprio out of range). LIO_WAIT: glibc
// queues the good one, waits for it, then fails with EIO; the file is read right after the
// return (the good write is done by then). LIO_NOWAIT: the good one is queued, the call fails
// with EINVAL; the file is read once it has finished. The bad one's error is EINVAL.
void LioOneRefused(Outcome* o, int mode) {
  int fd = NewFile(mode == LIO_WAIT ? "lio-wait-refused" : "lio-nowait-refused");
  struct aiocb good, bad;
  WriteCb(&good, fd, "good", 0);
  WriteCb(&bad, fd, "bad", 10);
  bad.aio_reqprio = 1000;
  struct aiocb* list[2] = {&good, &bad};
  Call(o, [&] { return lio_listio(mode, list, 2, nullptr); });
  if (mode == LIO_NOWAIT) DrainAio(list, 2);
  Extra(o, mode == LIO_WAIT ? "file_at_return" : "file", Contents(fd));
  ExtraErr(o, "good_error", aio_error(&good));
  ExtraErr(o, "bad_error", aio_error(&bad));
  DrainAio(list, 2);
  close(fd);
}
void LioWaitOneRefused(Outcome* o) { LioOneRefused(o, LIO_WAIT); }
void LioNowaitOneRefused(Outcome* o) { LioOneRefused(o, LIO_NOWAIT); }

// LIO_WAIT where every request is refused: nothing queued, glibc returns the enqueue error.
void LioWaitAllRefused(Outcome* o) {
  int fd = NewFile("lio-wait-all-refused");
  struct aiocb bad;
  WriteCb(&bad, fd, "bad", 0);
  bad.aio_reqprio = -1;
  struct aiocb* list[1] = {&bad};
  Call(o, [&] { return lio_listio(LIO_WAIT, list, 1, nullptr); });
  ExtraErr(o, "bad_error", aio_error(&bad));
  DrainAio(list, 1);
  Extra(o, "file", Contents(fd));
  close(fd);
}

// A notification kind glibc does not know: LIO_WAIT ignores the sigevent; LIO_NOWAIT accepts it
// and notifies nobody. With LIO_WAIT the file is read right after the return (the write is done
// by then); with LIO_NOWAIT once the request has finished.
void LioNonsenseSigevent(Outcome* o, int mode) {
  int fd = NewFile(mode == LIO_WAIT ? "lio-wait-sigev" : "lio-nowait-sigev");
  struct aiocb cb;
  WriteCb(&cb, fd, "written", 0);
  struct aiocb* list[1] = {&cb};
  struct sigevent sev;
  std::memset(&sev, 0, sizeof sev);
  sev.sigev_notify = 12345;
  Call(o, [&] { return lio_listio(mode, list, 1, &sev); });
  if (mode == LIO_NOWAIT) DrainAio(list, 1);
  Extra(o, mode == LIO_WAIT ? "file_at_return" : "file", Contents(fd));
  close(fd);
}
void LioWaitNonsenseSigevent(Outcome* o) { LioNonsenseSigevent(o, LIO_WAIT); }
void LioNowaitNonsenseSigevent(Outcome* o) { LioNonsenseSigevent(o, LIO_NOWAIT); }

// No requests at all, null entries and LIO_NOP entries: nothing to do, success.
void LioWaitNothing(Outcome* o) {
  struct aiocb nop;
  std::memset(&nop, 0, sizeof nop);
  nop.aio_fildes = -1;
  nop.aio_lio_opcode = LIO_NOP;
  struct aiocb* list[2] = {nullptr, &nop};
  Call(o, [&] { return lio_listio(LIO_WAIT, list, 2, nullptr); });
  long rc0;
  errno = 0;
  rc0 = lio_listio(LIO_WAIT, list, 0, nullptr);
  Extra(o, "zero_entries_rc", rc0);
}

// A request on a bad descriptor is queued, and fails at I/O time: LIO_WAIT reports EIO.
void LioWaitBadFd(Outcome* o) {
  struct aiocb cb;
  WriteCb(&cb, -1, "x", 0);
  struct aiocb* list[1] = {&cb};
  Call(o, [&] { return lio_listio(LIO_WAIT, list, 1, nullptr); });
  ExtraErr(o, "cb_error", aio_error(&cb));
}

// --- aio_read / aio_write / aio_fsync ---------------------------------------------------------

void AioBadPrio(Outcome* o, int which) {
  int fd = NewFile("aio-prio");
  struct aiocb cb;
  WriteCb(&cb, fd, "written", 0);
  char buf[16];
  if (which == 1 || which == 3) {
    cb.aio_buf = buf;
    cb.aio_nbytes = sizeof buf;
  }
  cb.aio_reqprio = -1;
  auto* cb64 = reinterpret_cast<struct aiocb64*>(&cb);
  Call(o, [&] {
    switch (which) {
      case 0: return aio_write(&cb);
      case 1: return aio_read(&cb);
      case 2: return aio_write64(cb64);
      default: return aio_read64(cb64);
    }
  });
  ExtraErr(o, "cb_error", aio_error(&cb));
  Extra(o, "cb_return", static_cast<long long>(aio_return(&cb)));
  struct aiocb* list[1] = {&cb};
  DrainAio(list, 1);
  Extra(o, "file", Contents(fd));
  close(fd);
}
void AioWriteBadPrio(Outcome* o) { AioBadPrio(o, 0); }
void AioReadBadPrio(Outcome* o) { AioBadPrio(o, 1); }
void AioWrite64BadPrio(Outcome* o) { AioBadPrio(o, 2); }
void AioRead64BadPrio(Outcome* o) { AioBadPrio(o, 3); }

// A bad descriptor is accepted, and fails at I/O time with EBADF.
void AioWriteBadFd(Outcome* o) {
  struct aiocb cb;
  WriteCb(&cb, -1, "x", 0);
  Call(o, [&] { return aio_write(&cb); });
  struct aiocb* list[1] = {&cb};
  DrainAio(list, 1);
  ExtraErr(o, "cb_error", aio_error(&cb));
}

void AioFsync(Outcome* o, int op, int fd, bool use64) {
  struct aiocb cb;
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = fd;
  cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  Call(o, [&] {
    return use64 ? aio_fsync64(op, reinterpret_cast<struct aiocb64*>(&cb)) : aio_fsync(op, &cb);
  });
  struct aiocb* list[1] = {&cb};
  DrainAio(list, 1);
  ExtraErr(o, "cb_error", aio_error(&cb));
}
void AioFsyncBadOp(Outcome* o) {
  int fd = NewFile("fsync-op");
  AioFsync(o, 12345, fd, false);
  close(fd);
}
void AioFsync64BadOp(Outcome* o) {
  int fd = NewFile("fsync64-op");
  AioFsync(o, 12345, fd, true);
  close(fd);
}
void AioFsyncBadFd(Outcome* o) { AioFsync(o, O_SYNC, -1, false); }
void AioFsyncClosedFd(Outcome* o) {
  int fd = NewFile("fsync-closed");
  close(fd);
  AioFsync(o, O_DSYNC, fd, false);
}

// --- getaddrinfo_a ----------------------------------------------------------------------------

// One request for "localhost" with the given mode and sigevent; whether a lookup was done, once
// whatever was queued has finished (gai_suspend returns at once for a request never queued).
void Gai(Outcome* o, int mode, struct sigevent* sev) {
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  struct gaicb req;
  std::memset(&req, 0, sizeof req);
  req.ar_name = "localhost";
  req.ar_request = &hints;
  struct gaicb* list[1] = {&req};
  Call(o, [&] { return getaddrinfo_a(mode, list, 1, sev); });
  for (int tries = 0; gai_error(&req) == EAI_INPROGRESS && tries < 600; ++tries) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    gai_suspend(list, 1, &ts);
  }
  Extra(o, "request_error", static_cast<long long>(gai_error(&req)));
  Extra(o, "looked_up", static_cast<long long>(req.ar_result != nullptr));
  if (req.ar_result != nullptr) freeaddrinfo(req.ar_result);
}
void GaiBadMode(Outcome* o) { Gai(o, 12345, nullptr); }
void GaiNegativeMode(Outcome* o) { Gai(o, -1, nullptr); }
void GaiWaitNonsenseSigevent(Outcome* o) {
  struct sigevent sev;
  std::memset(&sev, 0, sizeof sev);
  sev.sigev_notify = 12345;
  Gai(o, GAI_WAIT, &sev);
}
void GaiNothing(Outcome* o) {
  struct gaicb* list[1] = {nullptr};
  Call(o, [&] { return getaddrinfo_a(GAI_WAIT, list, 1, nullptr); });
  long rc0 = getaddrinfo_a(GAI_NOWAIT, list, 0, nullptr);
  Extra(o, "zero_entries_rc", rc0);
}

// --- timer_create -----------------------------------------------------------------------------

void NoteTimer(union sigval) {}

struct sigevent ThreadEvent() {
  struct sigevent sev;
  std::memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = NoteTimer;
  return sev;
}

void TimerBadClock(Outcome* o) {
  struct sigevent sev = ThreadEvent();
  timer_t t;
  Call(o, [&] { return timer_create(static_cast<clockid_t>(12345), &sev, &t); });
  if (o->rc == 0) timer_delete(t);
}

void TimerBadNotify(Outcome* o) {
  struct sigevent sev = ThreadEvent();
  sev.sigev_notify = 12345;
  timer_t t;
  Call(o, [&] { return timer_create(CLOCK_MONOTONIC, &sev, &t); });
  if (o->rc == 0) timer_delete(t);
}

// The CPU clock of "the calling thread" in the kernel's own encoding (what glibc passes for
// CLOCK_THREAD_CPUTIME_ID: thread id 0, CPUCLOCK_PERTHREAD, CPUCLOCK_SCHED): the timer must run
// on the caller's CPU time, not on that of whichever thread made the call. Arms it for 100 s,
// burns 50 ms of the caller's CPU time, and reads what is left.
void TimerCallerCpuClock(Outcome* o) {
  const clockid_t self_sched = static_cast<clockid_t>((~0u << 3) | 4 | 2);
  struct sigevent sev = ThreadEvent();
  timer_t t;
  Call(o, [&] { return timer_create(self_sched, &sev, &t); });
  if (o->rc != 0) return;
  struct itimerspec its;
  std::memset(&its, 0, sizeof its);
  its.it_value.tv_sec = 100;
  if (timer_settime(t, 0, &its, nullptr) != 0) t3::Die("timer_settime: " + t3::ErrName(errno));
  struct timespec start, now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  do {
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) <
           50 * 1000000LL);
  struct itimerspec left;
  timer_gettime(t, &left);
  // On the caller's clock at least 50 ms have gone; on an idle thread's, none.
  Extra(o, "runs_on_caller_cpu_time", static_cast<long long>(left.it_value.tv_sec < 100 &&
                                                             left.it_value.tv_nsec < 960000000));
  timer_delete(t);
}

// --- mq_notify --------------------------------------------------------------------------------

void MqBadDescriptor(Outcome* o) {
  struct sigevent sev = ThreadEvent();
  Call(o, [&] { return mq_notify(static_cast<mqd_t>(-1), &sev); });
}

void MqNotAQueue(Outcome* o) {
  int fd = NewFile("not-a-queue");
  struct sigevent sev = ThreadEvent();
  Call(o, [&] { return mq_notify(fd, &sev); });
  close(fd);
}

void MqAlreadyRegistered(Outcome* o) {
  std::string name = "/pristine-libc-answers-" + std::to_string(getpid());
  struct mq_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.mq_maxmsg = 4;
  attr.mq_msgsize = 16;
  mqd_t mq = mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
  if (mq == static_cast<mqd_t>(-1)) t3::Unsupported("mq_open " + name + ": " + t3::ErrName(errno));
  mq_unlink(name.c_str());
  struct sigevent sev = ThreadEvent();
  long first = mq_notify(mq, &sev);
  Call(o, [&] { return mq_notify(mq, &sev); });
  Extra(o, "first_rc", first);
  mq_close(mq);
}

const Case kCases[] = {
    {"lio_listio_bad_mode", LioBadMode},
    {"lio_listio_negative_mode", LioNegativeMode},
    {"lio_listio64_bad_mode", Lio64BadMode},
    {"lio_listio_wait_one_refused", LioWaitOneRefused},
    {"lio_listio_wait_all_refused", LioWaitAllRefused},
    {"lio_listio_nowait_one_refused", LioNowaitOneRefused},
    {"lio_listio_wait_nonsense_sigevent", LioWaitNonsenseSigevent},
    {"lio_listio_nowait_nonsense_sigevent", LioNowaitNonsenseSigevent},
    {"lio_listio_wait_nothing", LioWaitNothing},
    {"lio_listio_wait_bad_fd", LioWaitBadFd},
    {"aio_write_bad_prio", AioWriteBadPrio},
    {"aio_read_bad_prio", AioReadBadPrio},
    {"aio_write64_bad_prio", AioWrite64BadPrio},
    {"aio_read64_bad_prio", AioRead64BadPrio},
    {"aio_write_bad_fd", AioWriteBadFd},
    {"aio_fsync_bad_op", AioFsyncBadOp},
    {"aio_fsync64_bad_op", AioFsync64BadOp},
    {"aio_fsync_bad_fd", AioFsyncBadFd},
    {"aio_fsync_closed_fd", AioFsyncClosedFd},
    {"getaddrinfo_a_bad_mode", GaiBadMode},
    {"getaddrinfo_a_negative_mode", GaiNegativeMode},
    {"getaddrinfo_a_wait_nonsense_sigevent", GaiWaitNonsenseSigevent},
    {"getaddrinfo_a_nothing", GaiNothing},
    {"timer_create_bad_clock", TimerBadClock},
    {"timer_create_bad_notify", TimerBadNotify},
    {"timer_create_caller_cpu_clock", TimerCallerCpuClock},
    {"mq_notify_bad_descriptor", MqBadDescriptor},
    {"mq_notify_not_a_queue", MqNotAQueue},
    {"mq_notify_already_registered", MqAlreadyRegistered},
};

struct WorkerOut {
  long long caller_net = -1;
  std::string cases;
};

void* Worker(void* p) {
  auto* out = static_cast<WorkerOut*>(p);
  if (g_taint_net && unshare(CLONE_NEWNET) != 0) {
    t3::Unsupported("unshare(CLONE_NEWNET): " + t3::ErrName(errno));
  }
  out->caller_net = t3::NsInode("net");
  JsonWriter w;
  w.begin_object();
  for (const Case& c : kCases) {
    Outcome o;
    o.extra.begin_object();
    c.run(&o);
    o.extra.end_object();
    w.key(c.name);
    w.begin_object();
    w.key("rc"); w.value(o.rc);
    w.key("errno"); w.value(o.rc == 0 ? std::string("0") : t3::ErrName(o.err));
    w.key("observed"); w.raw(o.extra.str());
    w.end_object();
  }
  w.end_object();
  out->cases = w.str();
  return nullptr;
}

[[noreturn]] void Usage() {
  std::fprintf(stderr, "usage: libc_answers --dir DIR [--taint none|net]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    std::string v = argv[++i];
    if (a == "--dir") g_dir = v;
    else if (a == "--taint" && (v == "net" || v == "none")) g_taint_net = v == "net";
    else Usage();
  }
  if (g_dir.empty()) Usage();
  long long baseline = t3::NsInode("net");
  WorkerOut out;
  pthread_t th;
  int r = pthread_create(&th, nullptr, Worker, &out);
  if (r != 0) t3::Die("worker: " + t3::ErrName(r));
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(baseline);
  w.key("caller_net"); w.value(out.caller_net);
  w.key("cases"); w.raw(out.cases);
  w.end_object();
  t3::PrintJson(w);
  // glibc's helper threads may still exist: leave without destructors.
  _exit(0);
}
