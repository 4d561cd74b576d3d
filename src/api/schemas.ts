/**
 * Every route's input and output, as TypeBox schemas: one definition gives
 * the JSON schema fastify validates and serializes with (and @fastify/swagger
 * publishes) and, through Static<>, the TypeScript types the handlers use.
 * Querystrings refuse unknown parameters (additionalProperties: false; the
 * app's Ajv must not strip them, see app.ts). Semantic checks that a schema
 * cannot express (CIDR prefix length, dates, window vs horizon) are done by
 * the handlers and answered the same way: 400 with what is allowed.
 */
import { Type, type Static, type TEnum, type TEnumValue, type TSchema, type TSchemaOptions, type TUnsafe } from 'typebox';
import { DURATION_PATTERN } from '../flow/duration.js';
import { TOP_DIMENSIONS, TOP_METRICS } from '../flow/top-dimensions.js';

export const MAX_LIMIT = 10_000;

/**
 * `{ type: 'string', enum }`: Ajv reports a bad value with the enum keyword
 * (errors.ts lists the allowed values), where a union of literals would give
 * one error per literal.
 */
function StringEnum<const Values extends TEnumValue[]>(values: readonly [...Values], options: TSchemaOptions = {}): TEnum<Values> {
  return Type.Enum(values, { type: 'string', ...options });
}

/**
 * The schema or null, written `type: [T, 'null']` (OpenAPI 3.0 reads it as
 * nullable; fast-json-stringify serializes it without trying alternatives).
 */
function Nullable<T extends TSchema & { type: string }>(schema: T, options: TSchemaOptions = {}): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type, 'null'] });
}

/** Counts by name, e.g. rejected entries by reason (additionalProperties, which OpenAPI 3.0 reads, unlike patternProperties). */
function Counts(options: TSchemaOptions = {}): TUnsafe<Record<string, number>> {
  return Type.Unsafe<Record<string, number>>({ type: 'object', additionalProperties: { type: 'number' }, ...options });
}

/**
 * A querystring as the handler sees it: Ajv's useDefaults (app.ts) has filled
 * in every parameter that has a default. (The schema keeps them optional, so
 * /openapi.json does not call them required.)
 */
type WithDefaults<Query, Defaulted extends keyof Query> = Omit<Query, Defaulted> & Required<Pick<Query, Defaulted>>;

// ---- Querystrings ---------------------------------------------------------

const address = { minLength: 1, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' } as const;
const port = { minimum: 0, maximum: 65535 } as const;
const time = { minLength: 1, maxLength: 64 } as const;

/** The contract's flow filters, shared by /flows, /flows/stream and /top. */
export const filterProperties = {
  src: Type.Optional(Type.String({ ...address, description: 'source address or CIDR (IPv4 or IPv6)' })),
  dst: Type.Optional(Type.String({ ...address, description: 'destination address or CIDR' })),
  ip: Type.Optional(Type.String({ ...address, description: 'source or destination address or CIDR' })),
  port: Type.Optional(Type.Integer({ ...port, description: 'source or destination port' })),
  sport: Type.Optional(Type.Integer({ ...port, description: 'source port' })),
  dport: Type.Optional(Type.Integer({ ...port, description: 'destination port' })),
  proto: Type.Optional(Type.String({ pattern: '^([A-Za-z0-9]{1,8})$', description: 'tcp, udp, icmp, icmpv6, sctp, or a protocol number 0-255' })),
  iface: Type.Optional(Type.String({ pattern: '^[^\\s/:]{1,15}$', description: 'interface name' })),
  direction: Type.Optional(StringEnum(['ingress', 'egress'])),
  node: Type.Optional(Type.String({ minLength: 1, maxLength: 253, description: 'node name (a relay serves many nodes)' })),
  cgroup: Type.Optional(
    Type.String({ pattern: '^/', maxLength: 4096, description: 'cgroup v2 path prefix of the local socket (whole components): /system.slice, /kubepods.slice' }),
  ),
  workload: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'workload label, exactly: NAMESPACE/POD, nginx.service, docker:ID12' })),
  since: Type.Optional(Type.String({ ...time, description: 'ISO 8601 time, or a duration (30s, 5m, 1h) meaning that long ago' })),
  until: Type.Optional(Type.String({ ...time, description: 'ISO 8601 time, or a duration meaning that long ago' })),
};

export const FILTER_NAMES = Object.keys(filterProperties);

export const flowsQuerySchema = Type.Object(
  {
    ...filterProperties,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: 100, description: 'most records returned' })),
  },
  { additionalProperties: false },
);
export type FlowsQuery = WithDefaults<Static<typeof flowsQuerySchema>, 'limit'>;

export const streamQuerySchema = Type.Object(
  {
    ...filterProperties,
    limit: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_LIMIT,
        description: 'first send up to this many of the most recent matching records (with since: those since then), then follow',
      }),
    ),
  },
  { additionalProperties: false },
);
export type StreamQuery = Static<typeof streamQuerySchema>;

export function topQuerySchema(maxK: number) {
  return Type.Object(
    {
      ...filterProperties,
      by: Type.Optional(StringEnum(TOP_DIMENSIONS, { default: 'src' })),
      metric: Type.Optional(StringEnum(TOP_METRICS, { default: 'bytes' })),
      window: Type.Optional(Type.String({ pattern: DURATION_PATTERN, maxLength: 32, default: '1m', description: 'a duration: 30s, 5m, 1h' })),
      k: Type.Optional(Type.Integer({ minimum: 1, maximum: maxK, default: 10 })),
    },
    { additionalProperties: false },
  );
}
export type TopQuerystring = WithDefaults<Static<ReturnType<typeof topQuerySchema>>, 'by' | 'metric' | 'window' | 'k'>;

export const emptyQuerySchema = Type.Object({}, { additionalProperties: false });

// ---- Answers --------------------------------------------------------------

export const errorSchema = Type.Object({ error: Type.String(), message: Type.String() });
export type ErrorAnswer = Static<typeof errorSchema>;

export const healthSchema = Type.Object({ status: Type.Optional(Type.String()) });
export const readinessSchema = Type.Object({ ready: Type.Optional(Type.Boolean()), reason: Type.Optional(Type.String()) });
/** GET /metrics: the Prometheus text exposition */
export const metricsTextSchema = Type.String();
/** GET /api/v1/flows/stream once the events flow */
export const eventStreamSchema = Type.String({ description: 'text/event-stream: `data: FlowRecord` events' });

const dateTime = Type.String({ format: 'date-time' });

export const flowRecordSchema = Type.Object({
  node: Type.String(),
  iface: Type.String(),
  ifindex: Type.Integer(),
  direction: StringEnum(['ingress', 'egress']),
  family: Type.Enum([4, 6], { type: 'integer' }),
  src: Type.String(),
  dst: Type.String(),
  proto: Type.String(),
  sport: Type.Integer(),
  dport: Type.Integer(),
  icmpType: Type.Optional(Type.Integer()),
  icmpCode: Type.Optional(Type.Integer()),
  packets: Type.Number(),
  bytes: Type.Number(),
  tcpFlags: Type.Array(Type.String()),
  start: dateTime,
  end: dateTime,
  firstSeen: dateTime,
  lastSeen: dateTime,
  cgroup: Type.Optional(Nullable(Type.String(), { description: 'cgroup v2 path of the local socket; null: its id could not be resolved' })),
  cgroupId: Type.Optional(Type.Integer()),
  workload: Type.Optional(Type.String()),
  pod: Type.Optional(Type.Object({ namespace: Type.Optional(Type.String()), name: Type.Optional(Type.String()) })),
  container: Type.Optional(Type.String()),
});
export type FlowRecordAnswer = Static<typeof flowRecordSchema>;

export const flowPageSchema = Type.Object({
  flows: Type.Array(flowRecordSchema),
  total: Type.Integer(),
  truncated: Type.Boolean(),
  totalExact: Type.Optional(Type.Boolean({ description: 'false: the count stopped early and total is a lower bound (docs/api.md)' })),
});
export type FlowPageAnswer = Static<typeof flowPageSchema>;

/** The grouping fields of a top-talkers entry (those of `by`). */
export const topKeySchema = Type.Object(
  {
    iface: Type.Optional(Type.String()),
    direction: Type.Optional(Type.String()),
    family: Type.Optional(Type.Integer()),
    src: Type.Optional(Type.String()),
    dst: Type.Optional(Type.String()),
    proto: Type.Optional(Type.String()),
    sport: Type.Optional(Type.Integer()),
    dport: Type.Optional(Type.Integer()),
    icmpType: Type.Optional(Type.Integer()),
    icmpCode: Type.Optional(Type.Integer()),
    node: Type.Optional(Type.String()),
    cgroup: Type.Optional(Nullable(Type.String(), { description: 'by=cgroup: the cgroup v2 path; null: no local socket, or (with cgroupId) a cgroup whose path could not be read' })),
    cgroupId: Type.Optional(Type.Integer()),
    workload: Type.Optional(Nullable(Type.String(), { description: 'by=workload: the workload label; null: none or unknown' })),
  },
  { additionalProperties: false },
);

export const topEntrySchema = Type.Object({
  key: topKeySchema,
  bytes: Type.Number({ description: 'exact when the answer is exact, else a lower bound' }),
  packets: Type.Number(),
  share: Type.Number(),
  bytesMax: Type.Optional(Type.Number({ description: 'upper bound of the true bytes (equal to bytes when exact)' })),
  packetsMax: Type.Optional(Type.Number({ description: 'upper bound of the true packets' })),
});

export const topAnswerSchema = Type.Object({
  by: Type.String(),
  metric: Type.String(),
  window: Type.String(),
  windowSeconds: Type.Optional(Type.Number()),
  from: Type.Optional(Nullable(Type.String())),
  to: Type.Optional(Nullable(Type.String())),
  totalBytes: Type.Optional(Type.Number()),
  totalPackets: Type.Optional(Type.Number()),
  exact: Type.Optional(Type.Boolean()),
  unlistedBytesMax: Type.Optional(Type.Number({ description: 'the most bytes a group that is not listed can have' })),
  unlistedPacketsMax: Type.Optional(Type.Number({ description: 'the most packets a group that is not listed can have' })),
  entries: Type.Array(topEntrySchema),
});
export type TopAnswerBody = Static<typeof topAnswerSchema>;

export const topSeriesSchema = Type.Object({
  by: Type.String(),
  metric: Type.String(),
  window: Type.String(),
  bucketMs: Type.Integer({ description: 'width of a bucket' }),
  times: Type.Array(dateTime, { description: 'start of each bucket, oldest first; the last may be the open bucket, counted up to the last poll' }),
  entries: Type.Array(Type.Object({ key: topKeySchema, values: Type.Array(Type.Number(), { description: 'the metric per bucket' }) })),
  other: Type.Array(Type.Number(), { description: "per bucket: the bucket's total minus the listed entries" }),
  exact: Type.Boolean(),
});
export type TopSeriesBody = Static<typeof topSeriesSchema>;

const directionCounters = Type.Object({
  packets: Type.Number(),
  bytes: Type.Number(),
  pps: Type.Number({ description: 'packets per second' }),
  bps: Type.Number({ description: 'bits per second' }),
  otherPackets: Type.Optional(Type.Number()),
  otherBytes: Type.Optional(Type.Number()),
  overflowPackets: Type.Optional(Type.Number()),
  overflowBytes: Type.Optional(Type.Number()),
});

export const interfaceReportSchema = Type.Object({
  node: Type.Optional(Type.String()),
  at: Type.Optional(Type.String()),
  iface: Type.String(),
  ifindex: Type.Integer(),
  hook: Type.String(),
  rx: directionCounters,
  tx: directionCounters,
});
export const interfacesSchema = Type.Array(interfaceReportSchema);
export type InterfacesAnswer = Static<typeof interfacesSchema>;

// ---- Status: the agent's, and a relay's (the agent's fields plus role and relay) ----

const nullableNumber = Nullable(Type.Number());
const nullableString = Nullable(Type.String());

const sinkStatusSchema = Type.Object({
  name: Type.String(),
  exported: Type.Number(),
  dropped: Type.Number(),
  pending: Type.Optional(Type.Number()),
  lastError: Type.Optional(Type.String()),
  connected: Type.Optional(Type.Boolean()),
  buffer: Type.Optional(Type.Number()),
  writer: Type.Optional(Type.String({ description: "Redis sink: this process's writer id (field writer of its entries)" })),
  duplicateNode: Type.Optional(Type.Boolean({ description: "Redis sink: another process wrote this node's stream in the last minute" })),
  otherWriter: Type.Optional(Type.String({ description: "Redis sink: the other writer's id" })),
  idClashes: Type.Optional(Type.Number({ description: 'Redis sink: entries refused because another writer had taken their ID (sent again)' })),
  otherWriterSeen: Type.Optional(Type.Number({ description: "Redis sink: flushes that found another writer's id in flowscope:{NODE}:writer" })),
});

/** What the agent's status and a relay's have in common (a relay fills the agent-only ones with zeros and nulls). */
const statusProperties = {
  node: Type.String(),
  version: Type.String(),
  startedAt: Type.Optional(Type.String()),
  uptimeSeconds: Type.Number(),
  ready: Type.Optional(Type.Boolean()),
  interfaces: Type.Array(
    Type.Object({
      iface: Type.Optional(Type.String()),
      ifindex: Type.Optional(Type.Integer()),
      hook: Type.Optional(Type.String()),
      tcMechanism: Type.Optional(Type.String()),
      adopted: Type.Optional(Type.Boolean()),
    }),
  ),
  flowsTracked: Type.Integer(),
  mapCapacity: Type.Integer(),
  mapFill: Type.Optional(Type.Number()),
  overflowPackets: Type.Number(),
  overflowBytes: Type.Number(),
  otherPackets: Type.Optional(Type.Number()),
  otherBytes: Type.Optional(Type.Number()),
  pollIntervalMs: Type.Optional(Type.Number()),
  polls: Type.Optional(Type.Integer()),
  pollErrors: Type.Optional(Type.Integer()),
  partialDrains: Type.Optional(Type.Integer()),
  pinned: Type.Optional(
    Nullable(
      Type.Object({
        dir: Type.Optional(Type.String()),
        adopted: Type.Optional(Type.Boolean()),
        adoptedInterfaces: Type.Optional(Type.Array(Type.String())),
        resumedFrom: Type.Optional(nullableString),
        unconfirmedDrains: Type.Optional(Type.Integer()),
        problems: Type.Optional(Type.Array(Type.String())),
        previousLayout: Type.Optional(
          Type.Object({ valueBytes: Type.Integer(), flowsDrained: Type.Integer(), mapsLeft: Type.Integer() }),
        ),
        keepAttached: Type.Optional(Type.Boolean()),
      }),
    ),
  ),
  lastPollAt: Type.Optional(nullableString),
  lastPollDurationMs: nullableNumber,
  lastDrainDurationMs: Type.Optional(nullableNumber),
  lastError: Type.Optional(nullableString),
  recordsExported: Type.Optional(Type.Number()),
  sinks: Type.Array(sinkStatusSchema),
  store: Type.Optional(
    Type.Object({
      records: Type.Optional(Type.Integer()),
      capacity: Type.Optional(Type.Integer()),
      seen: Type.Optional(Type.Number()),
      lost: Type.Optional(Type.Number()),
    }),
  ),
  flowsExpired: Type.Optional(Counts()),
  datapathFailures: Type.Optional(Counts()),
  top: Type.Optional(
    Type.Object({ bucketMs: Type.Optional(Type.Number()), horizonMs: Type.Optional(Type.Number()), buckets: Type.Optional(Type.Integer()) }),
  ),
};

/** One node as a relay's status shows it. */
const relayNodeStatusSchema = Type.Object({
  node: Type.Optional(Type.String()),
  stream: Type.Optional(Type.String()),
  entries: Type.Optional(Type.Number()),
  lastId: Type.Optional(nullableString),
  lastRecordEnd: Type.Optional(nullableString),
  storeRecords: Type.Optional(Type.Integer()),
  interfaces: Type.Optional(Type.Integer()),
  rejected: Type.Optional(Counts({ description: 'refused entries and hash values of this node, by reason' })),
  readErrors: Type.Optional(Type.Number({ description: "error replies for this node's keys (wrong type, ...)" })),
  lastError: Type.Optional(Type.String({ description: "the last error reading this node's keys, while it lasts" })),
});

/** With --partitions: the relay's place in the fleet of relays (docs/redis.md). */
const relayScaleOutSchema = Type.Object({
  id: Type.String(),
  url: nullableString,
  partitions: Type.Integer(),
  owned: Type.Array(Type.Integer(), { description: 'partitions this relay owns in the live set' }),
  held: Type.Array(Type.Integer(), { description: 'partitions it holds: its own, and those handed over until their new owner has replayed them' }),
  live: Type.Array(Type.String()),
  gained: Type.Number(),
  lost: Type.Number(),
  lastFanout: Type.Object({ peers: Type.Number(), missing: Type.Array(Type.String()), incomplete: Type.Array(Type.Integer()) }),
  lastError: Type.Optional(Type.String()),
});

/** Present on a relay's status only (flowscope relay, docs/redis.md). */
export const relayStatusSchema = Type.Object({
  redis: Type.Optional(Type.String({ description: 'the Redis URL, password hidden' })),
  connected: Type.Optional(Type.Boolean()),
  lastError: Type.Optional(Type.String()),
  group: Type.Optional(Type.String()),
  consumer: Type.Optional(Type.String()),
  entries: Type.Optional(Type.Number({ description: 'stream entries ingested, all nodes' })),
  replayed: Type.Optional(Type.Number({ description: 'entries read back from the streams at start (XRANGE)' })),
  recovered: Type.Optional(Type.Number({ description: 'pending entries taken over and acknowledged (XAUTOCLAIM)' })),
  badEntries: Type.Optional(Type.Number({ description: 'entries and interfaces hash values refused by the checks, all nodes' })),
  rejected: Type.Optional(Counts({ description: 'refused entries and hash values by reason, all nodes' })),
  ignoredNodes: Type.Optional(Type.Integer({ description: 'names in flowscope:nodes not read (malformed, or past the node limit)' })),
  nodesKeyError: Type.Optional(Type.String({ description: 'the error reading flowscope:nodes, while it lasts' })),
  nodes: Type.Optional(Type.Array(relayNodeStatusSchema)),
  scaleOut: Type.Optional(relayScaleOutSchema),
});
export type RelayStatusPart = Static<typeof relayStatusSchema>;

/**
 * GET /api/v1/status, served by an agent or a relay: the same shared fields,
 * and role and relay present on a relay. (One object schema rather than
 * anyOf: fast-json-stringify serializes it without trying each branch.)
 */
export const statusSchema = Type.Object({
  ...statusProperties,
  role: Type.Optional(StringEnum(['agent', 'relay'])),
  relay: Type.Optional(relayStatusSchema),
});
export type StatusAnswer = Static<typeof statusSchema>;
/** A relay's status answer: the shared fields, role and relay. */
export type RelayStatusAnswer = StatusAnswer & { role: 'relay'; relay: RelayStatusPart };
