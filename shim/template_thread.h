// SPDX-License-Identifier: Apache-2.0
// The template thread: a thread in the baseline state that does work, chiefly
// creating threads, on behalf of threads that may be tainted (the idea of Go's
// runtime templateThread, src/runtime/proc.go).
//
// Rules for everything that runs on the template (request run functions
// included): never call into the dynamic loader (dlsym, dladdr, dlopen, lazy
// PLT binding of a not-yet-bound function, C++ thread_local destructors) and
// never wait on anything a caller may hold: a caller may be inside a
// constructor run by dlopen, holding the loader's lock, and waits for us.
// The one foreign call, glibc's pthread_create, allocates through the
// program's malloc: the template sets up its allocator state before anyone
// but its starter waits on it (template_thread.cc, SetUpAllocator; README,
// "No wait on a thread that can block on a lock the caller holds"). Under an
// interposer of pthread_create ahead of the library (a sanitizer runtime),
// that runtime's trampoline runs on the template before its body
// (interpose.h).
#ifndef PRISTINE_SHIM_TEMPLATE_THREAD_H_
#define PRISTINE_SHIM_TEMPLATE_THREAD_H_

#include <sched.h>

#include "dimension.h"
#include "handoff.h"
#include "state.h"
#include "thread_role.h"

namespace pristine {

// Starts the template from the calling thread, whose state it inherits: the
// calling thread must be in the baseline state for every dimension that can
// only be forwarded (kForwardedDims), since the template's are the baseline's
// for those (lifecycle.h, "The first change"). Where the calling thread
// differs in what a thread can repair on itself (`reenter`: the baseline's
// namespaces, the CPU affinity), the template repairs itself before serving.
// Not on the template; not concurrently with StopTemplate. Returns false (and
// changes nothing) if the thread could not be created or repaired.
struct TemplateRepairs {
  int reenter_fd[kDimCount];  // the baseline's namespaces to re-enter, -1 for none
  bool set_affinity = false;
  cpu_set_t affinity;
};
bool StartTemplate(const TemplateRepairs& repairs) PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// The template's securebits (which a forwarded thread keeps). Only while it runs.
long TemplateSecurebits();

// The privileges a forwarded thread starts with: the template's, read by the
// template itself (its /proc status through the library's descriptor) when it
// starts and again after a process-wide change (ForgetTemplateSecurity), on
// request. False if no template serves. Any thread but the template.
bool TemplateSecurity(SecurityState* out) PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// A process-wide credential change reached the template: read again at next
// need. Any thread.
void ForgetTemplateSecurity();

// Runs `req` on the template and waits for it. Returns false, without running
// it, when no template is serving. Any thread but the template.
bool RunOnTemplate(HandoffRequest* req) PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// Queues `req` for the template without waiting for it (nobody may wait on
// it: it must outlive its run, e.g. a static). Returns false, without
// queueing, when no template is serving. Any thread but the template.
bool PostToTemplate(HandoffRequest* req) PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// Stops the template and its spare threads (spares.h) and waits until the
// kernel has released their threads: a single-threaded change made right
// after sees only the program's. Does nothing if none runs. Any thread but
// the template.
void StopTemplate() PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// The main thread is leaving with pthread_exit (or thrd_exit). The process
// must then end when its last thread does, as without the library; glibc
// decides that by counting threads, the library's included. So from now on
// the template looks, every kWatchPeriod, whether any thread of the program
// remains; when none does, it retires the spares and exits itself, and the
// last of them to exit ends the process with status 0 (glibc's exit(0),
// which runs the program's atexit handlers on that thread). Until then every
// signal is delivered to the program's threads: the library's block them all.
// Any thread but the template; async-signal-safe (an atomic store and a
// wake).
void NoteMainThreadExit();

// Forked child only: the template and its spares did not survive the fork.
void ForgetTemplateAfterFork() PRISTINE_REQUIRES_ROLE(kForkChildRole);

}  // namespace pristine

#endif  // PRISTINE_SHIM_TEMPLATE_THREAD_H_
