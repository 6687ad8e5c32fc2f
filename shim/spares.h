// SPDX-License-Identifier: Apache-2.0
// Spare threads: threads created ahead of time, in the baseline state, each
// waiting to be handed a start routine. A forwarded create whose attributes
// are the defaults (pthread_create with a null attr, std::thread,
// thrd_create) takes one instead of waiting for a clone: the caller gets its
// pthread_t in well under a microsecond. A spare handed work first creates
// its replacement (it is still in the baseline state), so a steady stream of
// forwarded creates costs one clone each, as plain creates do, and never
// wakes the template; the template fills the pool when a create finds it
// empty. There are none until the first forwarded create.
//
// A spare is an ordinary joinable thread with the default stack; handing it
// a start routine is indistinguishable, to the program, from creating it then
// (pthread_t, join, detach, return value, pthread_exit).
#ifndef PRISTINE_SHIM_SPARES_H_
#define PRISTINE_SHIM_SPARES_H_

#include <pthread.h>

#include "handoff.h"
#include "thread_role.h"

namespace pristine {

// Hands `start(arg)` to a spare, whose thread then runs it; returns false if
// none is ready. Any thread but the template; `start` runs on the spare with
// all signals blocked, like any thread the template creates, after the spare
// made its own replacement. `affinity` (may be null): a CPU set given to the
// spare before it is handed the routine, as a thread created by the caller
// has its creator's from its first instruction (the routine's setup applies
// it again, should this fail).
bool HandToSpare(void* (*start)(void*), void* arg, pthread_t* thread,
                 const cpu_set_t* affinity = nullptr) PRISTINE_EXCLUDES_ROLE(kTemplateRole);

// After HandToSpare found none and the template created the thread instead:
// raises the number of spares kept by one (not at the first forwarded
// create). Returns the request that makes the template create them, in the
// background, for the caller to post (PostToTemplate: this module knows the
// template only through its requests), or null if one is queued already;
// CancelSpareRefill if it could not be posted. Any thread but the template.
HandoffRequest* WantMoreSpares() PRISTINE_EXCLUDES_ROLE(kTemplateRole);
void CancelSpareRefill();

// Makes one spare exit and waits for it, and keeps one fewer from now on;
// false if there was none. For a create that failed with EAGAIN: a spare
// holds a slot under the thread limits, and without the shim that slot would
// have been free. Any thread but the template.
bool RetireOneSpare();

// How many spare threads exist (ready or starting).
int SpareThreadCount();

// Makes every spare exit and waits for them, once the template has stopped;
// spares handed work earlier create none afterwards.
void RetireAllSpares();

// Forked child only: the spares did not survive the fork.
void ForgetSparesAfterFork() PRISTINE_REQUIRES_ROLE(kForkChildRole);

}  // namespace pristine

#endif  // PRISTINE_SHIM_SPARES_H_
