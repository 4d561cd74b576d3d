/**
 * Durations (`500ms`, `30s`, `5m`, `1h30m`, `2d`) and the time parameters of
 * the API (`since`/`until`: an ISO 8601 time or a duration meaning "that long
 * ago").
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Shape accepted by the JSON schemas for a duration. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/g;

/** A duration in milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(PART_RE)) total += Number(match[1]) * UNIT_MS[match[2]];
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Formats milliseconds as the shortest duration text that parseDuration reads back. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

// ISO 8601 date-time with a time zone (Z or ±hh:mm), optional fractions; or a bare date.
const ISO_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/**
 * Resolves a `since`/`until` value to epoch milliseconds: an ISO time, or a
 * duration counted back from `nowMs`. Undefined when it is neither.
 */
export function parseTimeParam(text: string, nowMs: number): number | undefined {
  const duration = parseDuration(text);
  if (duration !== undefined) return nowMs - duration;
  if (!ISO_RE.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}
