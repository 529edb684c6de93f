/* thread_name: see thread_name.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "thread_name.h"

#include <pthread.h>
#include <stdio.h>

int thread_name_set(const char *prefix, const char *name)
{
    char buf[16]; /* the kernel keeps 15 characters and the terminator */
    snprintf(buf, sizeof buf, "%s%s", prefix ? prefix : "", name ? name : "");
    return pthread_setname_np(pthread_self(), buf);
}
