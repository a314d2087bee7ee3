/*
 * late_removal.c — an LD_PRELOAD shim for tests/serve/stop_storm.mjs: the
 * main thread's epoll_ctl(EPOLL_CTL_DEL) waits 5 ms before it runs, as on a
 * loaded machine.  libmicrohttpd's MHD_quiesce_daemon removes the listening
 * socket from each pool thread's epoll set from the main thread; a pool
 * thread that runs meanwhile removes it too, and the later one aborted the
 * process (MHD_PANIC) — a SIGTERM ending in SIGABRT.  `retape serve` polls
 * with poll() since, so this must change nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && syscall(SYS_gettid) == getpid())
        usleep(5000);
    return real(epfd, op, fd, event);
}
