/*
 * Bench-only preload for the server (soak-memory-probe.ts, SOAK_PROBE_MALLOC): what the C allocator
 * (glibc malloc, which libsql, SQLite, Node's buffers and V8's off-heap memory all use) holds, in use
 * and free, which neither V8's heap statistics nor a heap snapshot see. A thread polls for
 * $MALLOC_PROBE_DIR/malloc-request every 100 ms; when it appears it writes malloc_info() to
 * malloc-N-before.xml, and, if the request says "trim", calls malloc_trim(0) (which hands free memory
 * back to the kernel) and writes malloc-N-after.xml; then it removes the request. Never part of the
 * server.
 *
 *   gcc -shared -fPIC -O1 -o /tmp/malloc-probe.so bench/tools/malloc-probe.c -lpthread
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[4096];

static void dump(int n, const char *tag) {
  char path[4200];
  snprintf(path, sizeof path, "%s/malloc-%d-%s.xml", dir, n, tag);
  FILE *f = fopen(path, "w");
  if (!f) return;
  malloc_info(0, f);
  fclose(f);
}

static void *watch(void *arg) {
  (void)arg;
  char request[4200];
  snprintf(request, sizeof request, "%s/malloc-request", dir);
  for (int n = 1;; usleep(100000)) {
    FILE *f = fopen(request, "r");
    if (!f) continue;
    char what[16] = {0};
    if (!fgets(what, sizeof what, f)) what[0] = 0;
    fclose(f);
    dump(n, "before");
    if (strncmp(what, "trim", 4) == 0) {
      malloc_trim(0);
      dump(n, "after");
    }
    n++;
    unlink(request);
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  const char *given = getenv("MALLOC_PROBE_DIR");
  if (!given || strlen(given) >= sizeof dir) return;
  strcpy(dir, given);
  pthread_t thread;
  if (pthread_create(&thread, NULL, watch, NULL) == 0) pthread_detach(thread);
}
