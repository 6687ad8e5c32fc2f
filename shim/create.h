// SPDX-License-Identifier: Apache-2.0
// Thread creation under the policy: what the pthread_create and thrd_create
// entry points do.
#ifndef PRISTINE_SHIM_CREATE_H_
#define PRISTINE_SHIM_CREATE_H_

#include <pthread.h>
#include <threads.h>

#include "dimension.h"

namespace pristine {

// pthread_create semantics exactly (return value, *thread, attributes), with
// the new thread's state chosen by the policy. Any thread but the template.
int CreateThread(pthread_t* thread, const pthread_attr_t* attr,
                 void* (*start)(void*), void* arg);

// thrd_create semantics exactly (thrd_success, thrd_nomem, thrd_error).
int CreateC11Thread(thrd_t* thread, thrd_start_t start, void* arg);

// The namespaces of `dims` (kRepairableDims) a thread created by the calling
// thread can re-enter: the library holds descriptors for them and the caller
// holds CAP_SYS_ADMIN, which setns needs and the new thread inherits. A
// thread that entered such a namespace held it then; it is asked of the
// kernel again only if the thread's record or a process-wide change says its
// privileges may have changed since (a drop the library did not see shows as
// a failed re-entry, which the new thread logs and records).
DimSet RepairableByCaller(DimSet dims);

}  // namespace pristine

#endif  // PRISTINE_SHIM_CREATE_H_
