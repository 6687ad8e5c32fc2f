// SPDX-License-Identifier: Apache-2.0
// What a new thread does before its start routine, when the library made it:
// the setup its creator prepared (ChildSetup) and the trampoline that applies
// it (ChildStart), on the new thread, before any code of the program runs.
//
//  - a thread the caller created clean (Decision::kRepaired) re-enters the
//    baseline's namespaces from the library's descriptors;
//  - a forwarded thread (created by the template or handed to a spare) takes
//    its caller's inherited values: name, namespaces, affinity, scheduling,
//    privileges at most the caller's;
//  - every one installs its taint record, then the signal mask it must run
//    with (it starts with every signal blocked when it has work to do first,
//    so no handler of the program runs before that work is done).
#ifndef PRISTINE_SHIM_CHILD_START_H_
#define PRISTINE_SHIM_CHILD_START_H_

#include <sched.h>

#include <cstdint>

#include "dimension.h"
#include "privileges.h"
#include "taint.h"
#include "thread_role.h"

namespace pristine {

// The floating-point environment a new thread inherits from its creator
// (POSIX: pthread_create; Linux copies the creator's registers): control
// modes (rounding, exception masks, flush-to-zero) and exception flags.
struct FpEnv {
#if defined(__x86_64__)
  uint32_t mxcsr = 0;   // SSE control and status
  uint16_t x87_cw = 0;  // x87 control word
  uint16_t x87_sw = 0;  // x87 status word (its exception flags are taken)
#elif defined(__aarch64__)
  uint64_t fpcr = 0;
  uint64_t fpsr = 0;
#endif
};

// Reads the calling thread's floating-point environment (a few instructions,
// no system call). Any thread.
inline void CaptureFpEnv(FpEnv* env) {
#if defined(__x86_64__)
  __asm__ volatile("stmxcsr %0" : "=m"(env->mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(env->x87_cw));
  __asm__ volatile("fnstsw %0" : "=m"(env->x87_sw));
#elif defined(__aarch64__)
  __asm__ volatile("mrs %0, fpcr" : "=r"(env->fpcr));
  __asm__ volatile("mrs %0, fpsr" : "=r"(env->fpsr));
#endif
}

struct ChildSetup {
  void* (*start)(void*) = nullptr;
  int (*c11_start)(void*) = nullptr;  // C11 threads: int-returning start
  void* arg = nullptr;
  ThreadTaint taint;                  // the new thread's taint record
  bool set_sigmask = false;           // the mask to run with, set last
  uint64_t sigmask = 0;

  // Repaired threads: the baseline's namespaces to re-enter (the library's
  // descriptors, not owned by the setup), -1 for none.
  int reenter_fd[kDimCount];

  // Forwarded threads only: the caller's values of inherited dimensions.
  bool forwarded = false;
  bool set_name = false;
  char name[16] = {};
  bool set_sched = false;
  int sched_policy = 0;
  struct sched_param sched_param = {};
  bool set_nice = false;
  int nice = 0;
  bool set_affinity = false;
  cpu_set_t affinity;
  int ns_fd[kDimCount];      // the caller's namespaces to enter (owned), -1 for none
  PrivilegePlan privileges;  // at most the caller's (never escalate)
  FpEnv fpenv;               // the caller's, as a thread it created would have
};

// A setup for `start(arg)` (or the C11 `c11_start(arg)`), from a pool of
// blocks so that the new thread never calls free(); null when out of memory.
// Any thread but the template.
ChildSetup* NewChildSetup(void* (*start)(void*), int (*c11_start)(void*), void* arg)
    PRISTINE_EXCLUDES_ROLE(kTemplateRole, kNewThreadRole);

// Releases a setup that no thread will run (the create failed), closing the
// descriptors it owns. The trampoline releases the others itself.
void FreeChildSetup(ChildSetup* s);

// The trampoline: pthread_create's start routine for a thread made with a
// ChildSetup. Runs on the new thread.
void* ChildStart(void* setup);

// Forked child only: the setups of threads that were starting in the parent
// are free again.
void ForgetChildSetupsAfterFork();

}  // namespace pristine

#endif  // PRISTINE_SHIM_CHILD_START_H_
