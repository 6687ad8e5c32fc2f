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

}  // namespace pristine

#endif  // PRISTINE_SHIM_CREATE_H_
