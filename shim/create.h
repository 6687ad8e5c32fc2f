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
// SIGEV_THREAD, getaddrinfo_a, POSIX aio), so that those threads, which run
// the program's callbacks, get the baseline state and never more privileges
// than the caller: runs `call(ctx)`
//  - on the caller switched to the baseline for the call (its namespaces and
//    CPU set, every signal blocked) when a create by the caller would be
//    repaired: glibc's threads then start from the caller, with its
//    privileges;
//  - on the template when a create would be forwarded, unless the template is
//    more privileged than the caller or `uses_fds` and the caller has a
//    private fd table (descriptors mean something else there);
//  - on the caller otherwise (the site is reported).
// errno is carried back. `call` may run on the template: it must only call
// functions already resolved by the caller (REAL(...) evaluated before this
// call) and never block. Any thread but the template.
long RunWithCleanThreads(long (*call)(void* ctx), void* ctx, bool uses_fds);

}  // namespace pristine

#endif  // PRISTINE_SHIM_CREATE_H_
