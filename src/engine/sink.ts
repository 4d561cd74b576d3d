/**
 * Where records go when they leave the collector. The in-memory store is one
 * sink; a Redis streams sink implements the same interface.
 */
import type { RecordBatch } from '../flow/record-batch.js';

export interface SinkStatus {
  name: string;
  /** records accepted and delivered (stored, or acknowledged by the backend) */
  exported: number;
  /** records that could not be delivered and are gone (e.g. backend down and buffer full) */
  dropped: number;
  /** records the sink holds but has not delivered yet */
  pending?: number;
  /** last error, if the sink is in trouble */
  lastError?: string;
}

export interface RecordSink {
  readonly name: string;
  /**
   * Takes the records of one export (or a chunk of it). Must not block the
   * event loop for long and must copy what it keeps: the batch is reused after
   * write returns. Must not throw: failures are counted as dropped.
   */
  write(records: RecordBatch): void;
  /** Delivers what is buffered (called at the end of every export). */
  flush(): Promise<void>;
  /** Flushes and releases resources. Idempotent. */
  close(): Promise<void>;
  status(): SinkStatus;
}
