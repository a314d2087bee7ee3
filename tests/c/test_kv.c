/* test_kv.c — the RocksDB store: values, scans, atomic batches, locking. */
#include "check.h"
#include "retape.h"

#include <signal.h>
#include <sys/wait.h>

int main(void)
{
    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/state", dir);
    retape_kv *kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "store opens (created)");

    CHECK(retape_kv_put(kv, "a:1", 3, "one", 3, &err) == 0, "put");
    char *val = NULL;
    size_t vlen = 0;
    CHECK(retape_kv_get(kv, "a:1", 3, &val, &vlen, &err) == 1 && vlen == 3 && memcmp(val, "one", 3) == 0, "get returns the value");
    retape_free(val);
    CHECK(retape_kv_get(kv, "a:2", 3, &val, &vlen, &err) == 0, "get of an absent key returns 0");
    CHECK(retape_kv_put(kv, "bin", 3, "x\0y", 3, &err) == 0 && retape_kv_get(kv, "bin", 3, &val, &vlen, &err) == 1
          && vlen == 3 && val[1] == '\0', "values may hold NUL bytes");
    retape_free(val);
    CHECK(retape_kv_delete(kv, "bin", 3, &err) == 0 && retape_kv_get(kv, "bin", 3, &val, &vlen, &err) == 0, "delete");

    retape_kv_batch *b = retape_kv_batch_new(NULL);
    retape_kv_batch_put(b, "a:3", 3, "three", 5);
    retape_kv_batch_put(b, "a:2", 3, "two", 3);
    retape_kv_batch_put(b, "b:1", 3, "bee", 3);
    retape_kv_batch_delete(b, "a:1", 3);
    CHECK(retape_kv_batch_count(b) == 4, "batch counts its operations");
    CHECK(retape_kv_get(kv, "a:2", 3, &val, &vlen, &err) == 0, "nothing visible before the write");
    CHECK(retape_kv_write(kv, b, &err) == 0, "batch written");
    retape_kv_batch_free(b);

    retape_kv_iter *it = retape_kv_scan(kv, "a:", 2, NULL);
    const char *k, *v;
    size_t kl, vl;
    char seen[64] = "";
    while (retape_kv_iter_next(it, &k, &kl, &v, &vl, &err) == 1)
        strncat(seen, k, kl), strcat(seen, " ");
    retape_kv_iter_close(it);
    CHECK_STR(seen, "a:2 a:3 ", "prefix scan in key order, deleted key gone, other prefix excluded");

    /* A shared snapshot: views pinned to it read the store as it was when it
     * was taken, after later writes and after the taker released it. */
    retape_kv *v1 = retape_kv_view(kv, &err), *v2 = retape_kv_view(kv, &err);
    retape_kv_snapshot *snap = retape_kv_snapshot_take(kv);
    CHECK(v1 && v2 && snap, "views and a shared snapshot");
    CHECK(retape_kv_put(kv, "a:2", 3, "TWO", 3, &err) == 0, "a write after the snapshot");
    retape_kv_pin_snapshot(v1, snap);
    retape_kv_pin_snapshot(v2, snap);
    retape_kv_snapshot_release(snap); /* the views hold it now */
    CHECK(retape_kv_get(v1, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "two", 3) == 0,
          "a view pinned to it reads the value before the write");
    retape_free(val);
    retape_kv_unpin(v1);
    CHECK(retape_kv_get(v2, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "two", 3) == 0,
          "another view still does after the first one unpinned");
    retape_free(val);
    CHECK(retape_kv_get(v1, "a:2", 3, &val, &vlen, &err) == 1 && memcmp(val, "TWO", 3) == 0,
          "unpinned: the latest value");
    retape_free(val);
    retape_kv_close(v2); /* closing a pinned view drops its reference */
    retape_kv_close(v1);

    /* A second handle, or another process, gets a clear error at once. */
    err = NULL;
    CHECK(retape_kv_open(path, &err) == NULL, "second open in the same process refused");
    CHECK_CONTAINS(err, "in use by another process", "message says the store is in use");
    retape_free(err);
    retape_kv_close(kv);

    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char *cerr = NULL;
        retape_kv *held = retape_kv_open(path, &cerr);
        if (write(ready[1], held ? "1" : "0", 1) != 1)
            _exit(1);
        sleep(3);
        retape_kv_close(held);
        _exit(0);
    }
    char flag = 0;
    if (read(ready[0], &flag, 1) != 1)
        flag = 0;
    CHECK(flag == '1', "child process holds the store");
    err = NULL;
    CHECK(retape_kv_open(path, &err) == NULL, "store held by another process refused, no hang");
    CHECK_CONTAINS(err, "in use by another process", "message names the situation");
    retape_free(err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    err = NULL;
    kv = retape_kv_open(path, &err);
    CHECK(kv != NULL, "reopens after the holder died (kill -9)");
    CHECK(kv && retape_kv_get(kv, "a:3", 3, &val, &vlen, &err) == 1 && vlen == 5, "data survives");
    retape_free(val);
    retape_kv_close(kv);
    free(dir);
    return done_testing();
}
