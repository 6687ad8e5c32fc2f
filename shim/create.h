// SPDX-License-Identifier: Apache-2.0
// Thread creation under the policy: what the pthread_create and thrd_create
// entry points do.
#ifndef PRISTINE_SHIM_CREATE_H_
#define PRISTINE_SHIM_CREATE_H_

#include <pthread.h>
#include <threads.h>

namespace pristine {

// pthread_create semantics exactly (return value, *thread, attributes), with
// the new thread's state chosen by the policy. Any thread but the template.
int CreateThread(pthread_t* thread, const pthread_attr_t* attr,
                 void* (*start)(void*), void* arg);

// thrd_create semantics exactly (thrd_success, thrd_nomem, thrd_error).
int CreateC11Thread(thrd_t* thread, thrd_start_t start, void* arg);

// For libc calls that make glibc create threads internally, through its own
// pthread_create, which no interposer sees (timer_create and mq_notify with
// SIGEV_THREAD, getaddrinfo_a, POSIX aio): runs `call(ctx)` on the template
// when a create by the calling thread would be forwarded, so the helper
// threads glibc starts there get the baseline state; on the calling thread
// otherwise. errno is carried back. `uses_fds`: the call names file
// descriptors, which mean something else on the template when the caller has
// a private fd table (then it runs on the caller, and the site is reported).
// `call` runs on the template: it must only call functions already resolved
// by the caller (REAL(...) evaluated before this call) and never block.
// Any thread but the template.
long RunWithCleanThreads(long (*call)(void* ctx), void* ctx, bool uses_fds);

}  // namespace pristine

#endif  // PRISTINE_SHIM_CREATE_H_
