/**
 * JSON schemas of every route's input and output. Querystrings refuse unknown
 * parameters (additionalProperties: false; the app's Ajv must not strip them,
 * see app.ts). Semantic checks that a schema cannot express (CIDR prefix
 * length, dates, window vs horizon) are done by the handlers and answered the
 * same way: 400 with what is allowed.
 */
import { DURATION_PATTERN } from '../flow/duration.js';
import { TOP_DIMENSIONS, TOP_METRICS } from '../flow/top-dimensions.js';

export const MAX_LIMIT = 10_000;

const address = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$',
} as const;
const port = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const time = { type: 'string', minLength: 1, maxLength: 64 } as const;

/** The contract's flow filters, shared by /flows, /flows/stream and /top. */
export const filterProperties = {
  src: { ...address, description: 'source address or CIDR (IPv4 or IPv6)' },
  dst: { ...address, description: 'destination address or CIDR' },
  ip: { ...address, description: 'source or destination address or CIDR' },
  port: { ...port, description: 'source or destination port' },
  sport: { ...port, description: 'source port' },
  dport: { ...port, description: 'destination port' },
  proto: {
    type: 'string',
    pattern: '^([A-Za-z0-9]{1,8})$',
    description: 'tcp, udp, icmp, icmpv6, sctp, or a protocol number 0-255',
  },
  iface: { type: 'string', pattern: '^[^\\s/:]{1,15}$', description: 'interface name' },
  direction: { type: 'string', enum: ['ingress', 'egress'] },
  node: { type: 'string', minLength: 1, maxLength: 253, description: 'node name (a relay serves many nodes)' },
  cgroup: { type: 'string', pattern: '^/', maxLength: 4096, description: 'cgroup v2 path prefix of the local socket (whole components): /system.slice, /kubepods.slice' },
  workload: { type: 'string', minLength: 1, maxLength: 512, description: 'workload label, exactly: NAMESPACE/POD, nginx.service, docker:ID12' },
  since: { ...time, description: 'ISO 8601 time, or a duration (30s, 5m, 1h) meaning that long ago' },
  until: { ...time, description: 'ISO 8601 time, or a duration meaning that long ago' },
} as const;

export const FILTER_NAMES = Object.keys(filterProperties);

export const flowsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterProperties,
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 100, description: 'most records returned' },
  },
} as const;

export const streamQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterProperties,
    limit: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_LIMIT,
      description: 'first send up to this many of the most recent matching records (with since: those since then), then follow',
    },
  },
} as const;

export function topQuerySchema(maxK: number) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...filterProperties,
      by: { type: 'string', enum: [...TOP_DIMENSIONS], default: 'src' },
      metric: { type: 'string', enum: [...TOP_METRICS], default: 'bytes' },
      window: { type: 'string', pattern: DURATION_PATTERN, maxLength: 32, default: '1m', description: 'a duration: 30s, 5m, 1h' },
      k: { type: 'integer', minimum: 1, maximum: maxK, default: 10 },
    },
  } as const;
}

export const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

export const flowRecordSchema = {
  type: 'object',
  required: ['node', 'iface', 'ifindex', 'direction', 'family', 'src', 'dst', 'proto', 'sport', 'dport', 'packets', 'bytes', 'tcpFlags', 'start', 'end', 'firstSeen', 'lastSeen'],
  properties: {
    node: { type: 'string' },
    iface: { type: 'string' },
    ifindex: { type: 'integer' },
    direction: { type: 'string', enum: ['ingress', 'egress'] },
    family: { type: 'integer', enum: [4, 6] },
    src: { type: 'string' },
    dst: { type: 'string' },
    proto: { type: 'string' },
    sport: { type: 'integer' },
    dport: { type: 'integer' },
    icmpType: { type: 'integer' },
    icmpCode: { type: 'integer' },
    packets: { type: 'number' },
    bytes: { type: 'number' },
    tcpFlags: { type: 'array', items: { type: 'string' } },
    start: { type: 'string', format: 'date-time' },
    end: { type: 'string', format: 'date-time' },
    firstSeen: { type: 'string', format: 'date-time' },
    lastSeen: { type: 'string', format: 'date-time' },
    cgroup: { type: ['string', 'null'], description: 'cgroup v2 path of the local socket; null: its id could not be resolved' },
    cgroupId: { type: 'integer' },
    workload: { type: 'string' },
    pod: { type: 'object', properties: { namespace: { type: 'string' }, name: { type: 'string' } } },
    container: { type: 'string' },
  },
} as const;

export const flowPageSchema = {
  type: 'object',
  required: ['flows', 'total', 'truncated'],
  properties: {
    flows: { type: 'array', items: flowRecordSchema },
    total: { type: 'integer' },
    truncated: { type: 'boolean' },
  },
} as const;

export const topAnswerSchema = {
  type: 'object',
  required: ['by', 'metric', 'window', 'entries'],
  properties: {
    by: { type: 'string' },
    metric: { type: 'string' },
    window: { type: 'string' },
    windowSeconds: { type: 'number' },
    from: { type: ['string', 'null'] },
    to: { type: ['string', 'null'] },
    totalBytes: { type: 'number' },
    totalPackets: { type: 'number' },
    exact: { type: 'boolean' },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'bytes', 'packets', 'share'],
        properties: {
          key: {
            type: 'object',
            additionalProperties: false,
            properties: {
              iface: { type: 'string' },
              direction: { type: 'string' },
              family: { type: 'integer' },
              src: { type: 'string' },
              dst: { type: 'string' },
              proto: { type: 'string' },
              sport: { type: 'integer' },
              dport: { type: 'integer' },
              icmpType: { type: 'integer' },
              icmpCode: { type: 'integer' },
              node: { type: 'string' },
            },
          },
          bytes: { type: 'number' },
          packets: { type: 'number' },
          share: { type: 'number' },
        },
      },
    },
  },
} as const;

const directionCounters = {
  type: 'object',
  required: ['packets', 'bytes', 'pps', 'bps'],
  properties: {
    packets: { type: 'number' },
    bytes: { type: 'number' },
    pps: { type: 'number', description: 'packets per second' },
    bps: { type: 'number', description: 'bits per second' },
    otherPackets: { type: 'number' },
    otherBytes: { type: 'number' },
    overflowPackets: { type: 'number' },
    overflowBytes: { type: 'number' },
  },
} as const;

export const interfacesSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['iface', 'ifindex', 'hook', 'rx', 'tx'],
    properties: {
      node: { type: 'string' },
      at: { type: 'string' },
      iface: { type: 'string' },
      ifindex: { type: 'integer' },
      hook: { type: 'string' },
      rx: directionCounters,
      tx: directionCounters,
    },
  },
} as const;

const counts = { type: 'object', additionalProperties: { type: 'number' } } as const;

/** Present on a relay's status only (flowscope relay, docs/redis.md). */
const relayStatusSchema = {
  type: 'object',
  properties: {
    redis: { type: 'string', description: 'the Redis URL, password hidden' },
    connected: { type: 'boolean' },
    lastError: { type: 'string' },
    group: { type: 'string' },
    consumer: { type: 'string' },
    entries: { type: 'number', description: 'stream entries ingested, all nodes' },
    replayed: { type: 'number', description: 'entries read back from the streams at start (XRANGE)' },
    recovered: { type: 'number', description: 'pending entries taken over and acknowledged (XAUTOCLAIM)' },
    badEntries: { type: 'number', description: 'entries and interfaces hash values refused by the checks, all nodes' },
    rejected: { ...counts, description: 'refused entries and hash values by reason, all nodes' },
    ignoredNodes: { type: 'integer', description: 'names in flowscope:nodes not read (malformed, or past the node limit)' },
    nodesKeyError: { type: 'string', description: 'the error reading flowscope:nodes, while it lasts' },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          node: { type: 'string' },
          stream: { type: 'string' },
          entries: { type: 'number' },
          lastId: { type: ['string', 'null'] },
          lastRecordEnd: { type: ['string', 'null'] },
          storeRecords: { type: 'integer' },
          interfaces: { type: 'integer' },
          rejected: { ...counts, description: 'refused entries and hash values of this node, by reason' },
          readErrors: { type: 'number', description: "error replies for this node's keys (wrong type, ...)" },
          lastError: { type: 'string', description: "the last error reading this node's keys, while it lasts" },
        },
      },
    },
  },
} as const;
const nullableNumber = { type: ['number', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const statusSchema = {
  type: 'object',
  required: ['node', 'version', 'uptimeSeconds', 'interfaces', 'flowsTracked', 'mapCapacity', 'overflowPackets', 'overflowBytes', 'lastPollDurationMs', 'sinks'],
  properties: {
    node: { type: 'string' },
    version: { type: 'string' },
    startedAt: { type: 'string' },
    uptimeSeconds: { type: 'number' },
    ready: { type: 'boolean' },
    interfaces: {
      type: 'array',
      items: {
        type: 'object',
        properties: { iface: { type: 'string' }, ifindex: { type: 'integer' }, hook: { type: 'string' }, tcMechanism: { type: 'string' }, adopted: { type: 'boolean' } },
      },
    },
    flowsTracked: { type: 'integer' },
    mapCapacity: { type: 'integer' },
    mapFill: { type: 'number' },
    overflowPackets: { type: 'number' },
    overflowBytes: { type: 'number' },
    otherPackets: { type: 'number' },
    otherBytes: { type: 'number' },
    pollIntervalMs: { type: 'number' },
    polls: { type: 'integer' },
    pollErrors: { type: 'integer' },
    partialDrains: { type: 'integer' },
    pinned: {
      type: ['object', 'null'],
      properties: {
        dir: { type: 'string' },
        adopted: { type: 'boolean' },
        adoptedInterfaces: { type: 'array', items: { type: 'string' } },
        resumedFrom: nullableString,
        unconfirmedDrains: { type: 'integer' },
        problems: { type: 'array', items: { type: 'string' } },
        keepAttached: { type: 'boolean' },
      },
    },
    lastPollAt: nullableString,
    lastPollDurationMs: nullableNumber,
    lastDrainDurationMs: nullableNumber,
    lastError: nullableString,
    recordsExported: { type: 'number' },
    sinks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'exported', 'dropped'],
        properties: {
          name: { type: 'string' },
          exported: { type: 'number' },
          dropped: { type: 'number' },
          pending: { type: 'number' },
          lastError: { type: 'string' },
          connected: { type: 'boolean' },
          buffer: { type: 'number' },
          writer: { type: 'string', description: "Redis sink: this process's writer id (field writer of its entries)" },
          duplicateNode: { type: 'boolean', description: "Redis sink: another process wrote this node's stream in the last minute" },
          otherWriter: { type: 'string', description: "Redis sink: the other writer's id" },
          idClashes: { type: 'number', description: 'Redis sink: entries refused because another writer had taken their ID (sent again)' },
          otherWriterSeen: { type: 'number', description: "Redis sink: flushes that found another writer's id in flowscope:{NODE}:writer" },
        },
      },
    },
    store: {
      type: 'object',
      properties: { records: { type: 'integer' }, capacity: { type: 'integer' }, seen: { type: 'number' }, lost: { type: 'number' } },
    },
    flowsExpired: counts,
    datapathFailures: counts,
    top: {
      type: 'object',
      properties: { bucketMs: { type: 'number' }, horizonMs: { type: 'number' }, buckets: { type: 'integer' } },
    },
    role: { type: 'string', enum: ['agent', 'relay'] },
    relay: relayStatusSchema,
  },
} as const;

export const emptyQuerySchema = { type: 'object', additionalProperties: false, properties: {} } as const;
