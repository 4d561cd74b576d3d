/** Defaults of the Redis options, kept apart so the config can read them without loading ioredis. */

/** Records the sink buffers at most while Redis is down or slow (~0.5 KB each, see bench/RESULTS.md). */
export const DEFAULT_BUFFER_RECORDS = 200_000;

/** XADDs per pipeline. */
export const DEFAULT_BATCH_SIZE = 512;
