/*
 * core/core.h - the server: worker threads (one per core, each with its own event loop,
 * SO_REUSEPORT sockets and preallocated buffers) and the query pipeline
 * policy -> cache -> resolve -> finalize.
 *
 * Owns: the workers, their sockets and resolvers, the shared packet cache, and the
 * published policy state (policy snapshot + the config it was built from), swapped
 * atomically on reload while workers keep answering.
 * Borrows: nothing; bw_server_create() takes ownership of the config.
 *
 * Thread safety: bw_server_* functions are called from the main thread only; workers
 * run on their own threads between bw_server_start() and bw_server_stop().
 */
#ifndef BW_CORE_H
#define BW_CORE_H

#include "base/base.h"
#include "conf/conf.h"

/* Result of a pipeline stage (STYLE rule 3). */
enum bw_stage { BW_STAGE_NEXT = 0, BW_STAGE_DONE, BW_STAGE_ASYNC, BW_STAGE_DROP };

struct bw_server;

/* Builds everything (cache, policy, sockets bound, resolvers) without starting threads.
 * Takes ownership of conf (also on failure). Returns 0 or a negative BW_E* with a message
 * in err. */
int bw_server_create(struct bw_conf *conf, struct bw_server **out, char *err, size_t errlen);
/* Starts the worker threads. */
int bw_server_start(struct bw_server *s);
/* Reloads: re-reads the config file (policy.*, server.access-control take effect; other
 * sections need a restart) and rebuilds the policy beside the live one, then swaps.
 * On a config error the running state is kept. Returns 0 or a negative BW_E*. */
int bw_server_reload(struct bw_server *s);
/* Rebuilds the policy if a feed file changed since the live snapshot was built. */
void bw_server_watch(struct bw_server *s);
/* Periodic housekeeping from the main thread's tick (writes the newly-seen memory). */
void bw_server_tick(struct bw_server *s);
/* Stops accepting, lets in-flight queries finish (up to drain_ms), joins the workers. */
void bw_server_stop(struct bw_server *s, unsigned drain_ms);
void bw_server_destroy(struct bw_server *s);
/* Logs per-worker counters summed. */
void bw_server_log_stats(struct bw_server *s);
/* The config the server runs on (watch interval etc.). */
const struct bw_conf *bw_server_conf(const struct bw_server *s);

#endif
